// The Docker Engine API over its unix socket: what the real docker provider speaks (through the
// Go client). Used where the CLI cannot say exactly what the provider sends (exec-form
// healthchecks, CopyToContainer with copyUIDGID, network disconnect from the default bridge).
import http from "node:http";

const API = "/v1.41";

function socketPath(): string {
  const host = process.env.DOCKER_HOST;
  if (host && !host.startsWith("unix://")) throw new Error(`engine API: DOCKER_HOST=${host} is not a unix socket; only unix sockets are supported`);
  return host ? host.slice("unix://".length) : "/var/run/docker.sock";
}

export interface ApiResponse {
  status: number;
  json: any;
  text: string;
}

export function engineApi(method: string, pathname: string, body?: unknown, opts: { raw?: Buffer; contentType?: string; timeoutMs?: number } = {}): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const data = opts.raw ?? (body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
    const headers: Record<string, string | number> = {};
    if (data) {
      headers["content-type"] = opts.contentType ?? (opts.raw ? "application/x-tar" : "application/json");
      headers["content-length"] = data.length;
    }
    const req = http.request({ socketPath: socketPath(), method, path: `${API}${pathname}`, headers, timeout: opts.timeoutMs ?? 120_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let json: any;
        try {
          json = text ? JSON.parse(text) : {};
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`engine API ${method} ${pathname}: timed out`)));
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

/** The daemon's message as the Go client reports it: "Error response from daemon: <message>". */
export function daemonError(r: ApiResponse): string {
  const msg = r.json?.message ?? r.text.trim();
  return `Error response from daemon: ${msg}`;
}

export const isNotFound = (r: ApiResponse) => r.status === 404;
