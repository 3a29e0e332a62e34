// Terminal output helpers. Everything a proposal carries came from the agent: strip
// control characters so a justification cannot drive the operator's terminal.
export function sanitize(s: string, keepNewlines = false): string {
  return s.replace(keepNewlines ? /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g : /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) =>
    c === "\t" ? "  " : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export function oneLine(s: string, max = 80): string {
  const flat = sanitize(s.replace(/\s+/g, " ").trim());
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
}

export function age(fromIso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(fromIso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d`;
}

export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

/** Lines that flag a risk start with this; shown in bold where the terminal has it. */
export const FLAG = "!! ";
const BOLD = "\u001b[1m";
const RESET = "\u001b[0m";

/** A line as the terminal shows it: risk flags in bold when `color`. */
export function emphasize(line: string, color = false): string {
  return color && line.startsWith(FLAG) ? BOLD + line + RESET : line;
}
