// A scripted sidecar behind store/reload.ts's Sidecar seam, speaking the log contract of pipelock
// (lines as pipelock's internal/audit/logger.go and reload.go write them, and the stand-in
// test/e2e/pipelock-standin mirrors) or of egress (contracts/egress.ts EGRESS_LOG). It runs one
// config, read through `current()` (a file on disk, or a variable):
//   - a reload of bytes it already runs is skipped silently (pipelock's shouldSkipReload);
//   - "broken" in the file: refused as unparsable;
//   - pipelock only: "downgrade" in the file while the running config has none: refused as strict
//     mode refuses any reload warning, and refused again on every later reload of that file;
//   - a restart starts with whatever the file holds, unless it holds "nostart".
// The real stand-in behind the same seam: test/integration/live-reload.test.ts.
import { sha256 } from "../../contracts/hash.ts";
import { SINCE_START, type Sidecar } from "../../store/reload.ts";

export class FakeSidecar implements Sidecar {
  log: string[] = [];
  runs = "";
  up = true;
  silent = false;
  restarts = 0;
  hangUps = 0;
  private startLog = 0;

  /** What strict mode counts as a downgrade of the running config (default: the word "downgrade" appears). */
  downgrades = (file: string, runs: string) => file.includes("downgrade") && !runs.includes("downgrade");

  constructor(
    readonly name: string,
    private readonly current: () => string,
    private readonly speaks: "pipelock" | "egress" = "pipelock",
  ) {
    this.start();
  }

  private line(o: Record<string, unknown>) {
    this.log.push(JSON.stringify(o));
  }

  private start() {
    this.startLog = this.log.length;
    const file = this.current();
    if (file.includes("nostart")) {
      this.log.push(this.speaks === "pipelock" ? "pipelock: invalid config: nostart is not a setting" : JSON.stringify({ level: "error", msg: "egress failed to start", error: "nostart" }));
      return;
    }
    this.runs = file;
    if (this.speaks === "pipelock") this.line({ level: "info", event: "startup", listen: "0.0.0.0:8888", mode: "strict", config_hash: sha256(file), message: "pipelock started" });
    else this.line({ level: "info", msg: "egress listening", sha256: sha256(file) });
  }

  async running() {
    return this.up;
  }
  async mark() {
    return String(this.log.length);
  }
  async lines(mark: string) {
    return this.log.slice(mark === SINCE_START ? this.startLog : Number(mark));
  }
  async restart() {
    this.restarts++;
    this.start();
  }

  async hangUp() {
    this.hangUps++;
    const file = this.current();
    if (this.silent || file === this.runs) return;
    if (this.speaks === "egress") {
      if (file.includes("broken")) this.line({ level: "error", msg: "routes file NOT applied; the previous routes stay in force", error: "routes.yaml: broken", sha256: sha256(file) });
      else {
        this.runs = file;
        this.line({ level: "info", msg: "routes reloaded", sha256: sha256(file) });
      }
      return;
    }
    if (file.includes("broken")) {
      this.log.push("pipelock: config reload failed: invalid config: yaml: line 3: did not find expected key");
      return;
    }
    if (this.downgrades(file, this.runs)) {
      this.log.push("WARNING: config reload: ssrf.ip_allowlist - SSRF IP allowlist expanded: 192.0.2.0/24 — SSRF check bypassed for these IP ranges");
      this.line({ level: "error", event: "error", method: "CONFIG_RELOAD", resource: "/etc/claude-bottle/pipelock/pipelock.yaml", error: "rejected: security downgrade from strict mode", message: "request error" });
      return;
    }
    this.runs = file;
    this.line({ level: "info", event: "config_reload", status: "success", detail: "mode=strict", config_hash: sha256(file), message: "configuration reloaded" });
  }
}
