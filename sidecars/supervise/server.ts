// The supervise HTTP server: /health for the container healthcheck, and the MCP endpoint
// in stateless streamable-HTTP mode (a restart of supervise invalidates no client session;
// proposals and decisions are files, so it loses nothing either).
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SUPERVISE_HEALTH_PATH, SUPERVISE_MCP_PATH, type SuperviseSettings } from "../../contracts/supervise.ts";
import { parseListen } from "../../contracts/validation.ts";
import { Supervisor, type Log } from "./supervisor.ts";
import { createMcpServer } from "./tools.ts";

export interface RunningSupervise {
  url: string;
  port: number;
  supervisor: Supervisor;
  close(): Promise<void>;
}

export async function startSupervise(settings: SuperviseSettings, log: Log = () => {}): Promise<RunningSupervise> {
  const sup = await Supervisor.open(settings, log);
  const sockets = new Set<Socket>();
  const httpServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://supervise");
    if (url.pathname === SUPERVISE_HEALTH_PATH) {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (url.pathname !== SUPERVISE_MCP_PATH) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found; the MCP endpoint is ${SUPERVISE_MCP_PATH}\n`);
      return;
    }
    const server = createMcpServer(sup);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, keepAliveMs: settings.SUPERVISE_KEEPALIVE_MS });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch((err) => {
        log(`request failed: ${(err as Error).message}`);
        if (!res.headersSent) res.writeHead(500).end();
      });
  });
  httpServer.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // Long polls: never let Node's own timeouts cut a 30-minute wait.
  httpServer.requestTimeout = 0;
  httpServer.headersTimeout = 60_000;
  httpServer.keepAliveTimeout = 65_000;
  httpServer.timeout = 0;
  const { host, port } = parseListen(settings.SUPERVISE_LISTEN);
  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, host, () => resolve());
  });
  const actual = (httpServer.address() as AddressInfo).port;
  const shownHost = host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shownHost}:${actual}${SUPERVISE_MCP_PATH}`,
    port: actual,
    supervisor: sup,
    close: () =>
      new Promise<void>((resolve) => {
        sup.close();
        for (const s of sockets) s.destroy();
        httpServer.close(() => resolve());
      }),
  };
}
