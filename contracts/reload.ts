// What a sidecar's log says about loading its live config file. The writers of a live file
// (the LiveConfigFile provider at `pulumi up`, `bottle approve`) read the sidecar's log after
// writing and call the change applied only when the sidecar names the exact file it loaded
// (the sha256 of its bytes). Each sidecar's own log contract turns one log line into one of
// these: contracts/pipelock.ts readPipelockLogLine (pipelock's audit log), contracts/egress.ts
// readEgressLogLine (ours).

export type LoadEvent =
  /** The sidecar now runs the file whose bytes hash to sha256: at start, or on a reload. */
  | { kind: "loaded"; sha256: string; at: "start" | "reload" }
  /**
   * The sidecar refused a file and kept what it ran. `sha256` when the line names the refused
   * file. `restartable`: a restart would load it (the sidecar refuses it live only, e.g.
   * pipelock's strict mode refusing any downgrade on reload).
   */
  | { kind: "refused"; reason: string; restartable: boolean; sha256?: string }
  /** Context worth quoting next to a refusal (a warning naming the field, a start error). */
  | { kind: "note"; text: string };

export type LogReader = (line: string) => LoadEvent | undefined;

/** A JSON log line as an object, or undefined for plain text. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  const t = line.trim();
  if (!t.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(t);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
