// The written contract of every double: a field map (input path → what the double does).
// A set input whose path no key covers is refused. A key covers its own path and everything
// below it ("options" covers "options.com.docker.network.bridge.inhibit_ipv4"), so free-form
// maps are listed once and structured values field by field.

export class UnimplementedFieldError extends Error {}

/** Every leaf path of `v` that is set, with list indices replaced by `*`. */
export function leafPaths(v: unknown, prefix = ""): string[] {
  if (v === undefined || v === null) return [];
  // An empty list or map sets nothing (the bridge reads [] and {} as unset).
  if (Array.isArray(v)) return v.flatMap((x) => leafPaths(x, `${prefix}[*]`));
  if (typeof v === "object") return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => leafPaths(x, prefix ? `${prefix}.${k}` : k));
  return [prefix];
}

const covers = (key: string, p: string) => p === key || p.startsWith(key + ".") || p.startsWith(key + "[");

/** The set input paths of `inputs` that no key of `fields` covers (deduplicated). */
export function unimplementedFields(fields: Record<string, string>, inputs: Record<string, unknown>): string[] {
  const keys = Object.keys(fields);
  const missing = leafPaths(inputs).filter((p) => !keys.some((k) => covers(k, p)));
  return [...new Set(missing)];
}

/** The source of a field: the longest prefix of its path in `sources`. */
export function sourceOf(field: string, sources: Record<string, string>): string {
  const key = Object.keys(sources).filter((k) => k === "" || covers(k, field)).sort((a, b) => b.length - a.length)[0];
  return key === undefined ? "" : sources[key]!;
}

/** Markdown table of a field map, each row with the real source it mirrors (README-engine.md is generated from these). */
export function fieldTable(title: string, mirrors: string, fields: Record<string, string>, sources: Record<string, string> = {}): string {
  return [
    `### \`${title}\``,
    "",
    `Mirrors: ${mirrors}`,
    "",
    "| input | double | real source |",
    "| --- | --- | --- |",
    ...Object.entries(fields).map(([f, what]) => `| \`${f}\` | ${what} | ${sourceOf(f, sources)} |`),
    "",
  ].join("\n");
}
