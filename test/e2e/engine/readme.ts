// The field tables of test/e2e/README-engine.md, rendered from the doubles themselves (a test
// keeps the README in step). Print: node --import tsx test/e2e/engine/readme.ts
import { fileURLToPath } from "node:url";
import { dockerDoubles, dockerProviderConfig } from "./docker.ts";
import { fieldTable } from "./fields.ts";
import { LIVE_CONFIG_FIELDS } from "./double.ts";
import { tlsDoubles } from "./tls.ts";

export function fieldTables(): string {
  const parts = [fieldTable("pulumi:providers:docker (provider settings, at Configure)", dockerProviderConfig.mirrors, dockerProviderConfig.fields, dockerProviderConfig.sources)];
  parts.push(...[...Object.entries(dockerDoubles), ...Object.entries(tlsDoubles)].map(([type, d]) => fieldTable(type, d.mirrors, d.fields, d.sources)));
  parts.push(fieldTable("pulumi-nodejs:dynamic:Resource (LiveConfigFile), mock path only", "the dynamic provider in components/liveConfig.ts (the real engine runs its serialized code)", LIVE_CONFIG_FIELDS, { "": "components/liveConfig.ts: the dynamic provider's create/update" }));
  return parts.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(fieldTables());
