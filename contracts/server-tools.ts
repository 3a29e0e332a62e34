// The LLM channel's switches: which of the Anthropic API's server-executed tools a bottle's
// requests may turn on. Anthropic runs these on its own infrastructure, outside the bottle,
// so no network layer of ours sees what they send; egress reads every Messages API request
// on an LLM route and enforces this (sidecars/egress/llm-guard.ts).
//
// The switches travel inside the routes document (routes.yaml, contracts/routes.ts): that is
// the file egress already loads, reloads and proves by hash. The manifest sets them
// (bottles.<name>.egress.server_tools), an approved `server_tools` proposal changes them live.
// Tools that reach a host the request names (web_fetch, the MCP connector, URL sources of
// images and documents) have no switch: they are allowed only towards hosts the bottle routes.
import { z } from "zod";

export const ServerToolsSchema = z.strictObject({
  web_search: z
    .boolean()
    .default(true)
    .describe("the web_search server tool (Claude Code's WebSearch runs on it); queries go to Anthropic's search provider, not to a host the request names"),
  code_execution: z
    .boolean()
    .default(false)
    .describe("the code execution server tool, with what runs in its container (the `container` field, skills, container_upload blocks, the code-execution/skills betas)"),
});

export type ServerTools = z.output<typeof ServerToolsSchema>;
export type ServerToolSwitch = keyof ServerTools;

export const SERVER_TOOL_SWITCHES = Object.keys(ServerToolsSchema.shape) as ServerToolSwitch[];

/** Some switches, each optional (a proposal names only what it changes); at least one. */
export const ServerToolsChangeSchema = z
  .strictObject(
    Object.fromEntries(SERVER_TOOL_SWITCHES.map((k) => [k, z.boolean().optional().describe(ServerToolsSchema.shape[k].description ?? k)])) as {
      [K in ServerToolSwitch]: z.ZodOptional<z.ZodBoolean>;
    },
  )
  .refine((c) => SERVER_TOOL_SWITCHES.some((k) => c[k] !== undefined), { message: `name at least one switch (${SERVER_TOOL_SWITCHES.join(", ")})` });

/** `current` with the switches `changes` names set (the others kept). */
export function withSwitches(current: ServerTools, changes: Partial<ServerTools>): ServerTools {
  const next = { ...current };
  for (const k of SERVER_TOOL_SWITCHES) if (changes[k] !== undefined) next[k] = changes[k];
  return next;
}

/** `web_search on, code_execution off`: for summaries and log lines. */
export function describeServerTools(s: ServerTools): string {
  return SERVER_TOOL_SWITCHES.map((k) => `${k} ${s[k] ? "on" : "off"}`).join(", ");
}
