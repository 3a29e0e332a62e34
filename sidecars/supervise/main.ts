// Entry of the supervise sidecar: `node main.mjs` serves MCP on SUPERVISE_LISTEN;
// `node main.mjs healthcheck` exits 0 when the local server answers (container healthcheck).
import "./node18.ts";
import http from "node:http";
import { SUPERVISE_HEALTH_PATH, SUPERVISE_PORT, superviseSettingsFromEnv } from "../../contracts/supervise.ts";
import { ConfigError, parseListen } from "../../contracts/validation.ts";
import { startSupervise } from "./server.ts";

function log(msg: string): void {
  process.stdout.write(JSON.stringify({ at: new Date().toISOString(), component: "supervise", msg }) + "\n");
}

function healthcheck(): void {
  const listen = process.env.SUPERVISE_LISTEN;
  const port = listen ? parseListen(listen).port : SUPERVISE_PORT;
  const req = http.get({ host: "127.0.0.1", port, path: SUPERVISE_HEALTH_PATH, timeout: 3000 }, (res) => {
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
  req.on("error", () => process.exit(1));
  req.on("timeout", () => process.exit(1));
}

async function main(): Promise<void> {
  if (process.argv[2] === "healthcheck") return healthcheck();
  let settings;
  try {
    settings = superviseSettingsFromEnv(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`supervise: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const running = await startSupervise(settings, log);
  log(`listening on ${settings.SUPERVISE_LISTEN} (MCP at ${running.url.replace(/^http:\/\/[^/]+/, "")}) for bottle ${settings.SUPERVISE_BOTTLE}`);
  const stop = () => {
    log("stopping");
    void running.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

void main();
