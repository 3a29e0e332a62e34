// The egress policy, as a pure function: one request in, one decision out. No I/O, no clock,
// no environment access (tokens come in through the context), so every rule is a table test.
//
// Rules, in the order they are checked (the first failing rule is the reason reported):
//  1. the method is a token and the request is not a protocol upgrade;
//  2. the host is a DNS name (IP literals in any spelling never match a name route) and the
//     port is the scheme's default (443 in a tunnel, 80 for cleartext);
//  3. in a tunnel the CONNECT target is authoritative: a Host header, an absolute-form target
//     or a TLS SNI naming another host is refused;
//  4. the path is spelled unambiguously: no dot segments, no empty segments, no encoded
//     slash / backslash / dot / percent, no `;`, no backslash, no fragment, and percent-escapes
//     that decode to well-formed UTF-8 only (an overlong `%c0%ae` is a dot to a lenient
//     decoder). Refused, never normalised: what we match is byte-for-byte what upstream receives;
//  5. git smart-HTTP push (`git-receive-pack`) is refused on every host;
//  6. a route matches the host (exact beats wildcard; the longest wildcard wins);
//  7. the route's path allowlist (segment-aware prefixes) and method list admit the request;
//  8. credentials: agent-sent credential headers are never forwarded. To a route that injects,
//     a real (non-placeholder) agent credential is refused rather than merged; a route that
//     injects is refused over cleartext and when its token is missing; its response is relayed
//     with the injected credential redacted (redact.ts).
import { isIP } from "node:net";
import { AGENT_PLACEHOLDER_TOKEN, HTTP_METHODS, type Route } from "../../contracts/routes.ts";
import { HOSTNAME_RE } from "../../contracts/validation.ts";
import { redactionValues } from "./redact.ts";

export type Scheme = "https" | "http";

export interface EgressRequest {
  /** "https": a request inside a CONNECT tunnel whose TLS we terminated; "http": a cleartext absolute-URI request. */
  scheme: Scheme;
  /** https only: the CONNECT target host and port (authoritative). */
  connectHost?: string;
  connectPort?: number;
  /** https only: the SNI of the client's ClientHello; undefined when it sent none. */
  sni?: string;
  method: string;
  /** The raw request-target as received: origin-form in a tunnel, absolute-URI for cleartext. */
  target: string;
  /** Header names lower-case (as node's IncomingMessage.headers has them). */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

export interface DecideContext {
  /** Where `token_ref`s are looked up (the sidecar passes its own environment). */
  tokens?: Readonly<Record<string, string | undefined>>;
  /** The supervise tool the agent can call to ask for a route; unset = no how_to_ask. */
  superviseTool?: string;
  /** The supervise tool that widens pipelock's allowlist; unset = no how_to_ask on pipelock's allowlist refusals. */
  pipelockTool?: string;
}

export const DENY_REASONS = [
  "bad_request",
  "upgrade_not_supported",
  "bad_host",
  "ip_literal",
  "port_not_allowed",
  "host_mismatch",
  "sni_mismatch",
  "ambiguous_path",
  "git_push",
  "no_route",
  "path_not_allowed",
  "method_not_allowed",
  "cleartext_credential",
  "token_missing",
  "agent_credential",
] as const;
export type DenyReason = (typeof DENY_REASONS)[number];

/** Refusals a new or widened route would fix: only these carry how_to_ask. */
const ROUTE_FIXABLE: ReadonlySet<DenyReason> = new Set(["no_route", "path_not_allowed", "method_not_allowed"]);

export interface Allow {
  action: "allow";
  reason: "route";
  routeIndex: number;
  route: Route;
  host: string;
  port: number;
  /** Path without the query (safe to log). */
  path: string;
  /** Origin-form target to send upstream (path + query, exactly as received). */
  upstreamTarget: string;
  /** Lower-case header names to drop before forwarding (agent credentials). */
  strip: string[];
  /** The credential header to add (never log its value). */
  inject?: { name: string; value: string };
  /** Exact values to redact from the response (the injected credential's spellings; never log them). */
  redact?: string[];
}

export interface Deny {
  action: "deny";
  status: 403;
  reason: DenyReason;
  message: string;
  host: string;
  method: string;
  path: string;
  routeIndex?: number;
  howToAsk?: { tool: string; route: Route };
}

export type Decision = Allow | Deny;

/** Header that carries the refusal reason code on every refusal. */
export const BLOCK_REASON_HEADER = "x-claude-bottle-block-reason";

/** Headers that carry credentials; the route's own injected header is added per route. */
export const CREDENTIAL_HEADERS = ["authorization", "proxy-authorization", "x-api-key"] as const;

// ---------------------------------------------------------------------------------------------
// Hosts

export type ParsedHost = { kind: "name"; name: string } | { kind: "ip"; text: string } | { kind: "invalid"; text: string };

const NUMERIC_LABEL_RE = /^(?:0x[0-9a-f]*|[0-9]+)$/i;

/**
 * Classify a host as received (no port). Case-insensitive; one trailing dot ignored. Any
 * spelling an URL parser or inet_aton would read as an IPv4 address (`127.1`, `2130706433`,
 * `0x7f.0.0.1`, `0177.0.0.1`, a numeric last label) is an IP, as is anything in brackets.
 */
export function parseHost(raw: string): ParsedHost {
  let h = raw.toLowerCase();
  if (h.startsWith("[")) return { kind: "ip", text: h };
  if (isIP(h)) return { kind: "ip", text: h };
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (h === "" || h.endsWith(".")) return { kind: "invalid", text: raw };
  const labels = h.split(".");
  if (labels.every((l) => NUMERIC_LABEL_RE.test(l)) || NUMERIC_LABEL_RE.test(labels[labels.length - 1]!)) return { kind: "ip", text: h };
  if (!HOSTNAME_RE.test(h)) return { kind: "invalid", text: raw };
  return { kind: "name", name: h };
}

/** Split `host[:port]` / `[v6][:port]`. Returns undefined for a malformed authority. */
export function splitHostPort(authority: string): { host: string; port?: number } | undefined {
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    if (end < 0) return undefined;
    host = authority.slice(0, end + 1);
    const rest = authority.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) return undefined;
    portText = rest ? rest.slice(1) : undefined;
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0 && authority.indexOf(":") !== colon) return undefined;
    host = colon >= 0 ? authority.slice(0, colon) : authority;
    portText = colon >= 0 ? authority.slice(colon + 1) : undefined;
  }
  if (portText === undefined) return { host };
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** The route for a host name: exact first, then the longest matching `*.` wildcard. */
export function findRoute(name: string, routes: readonly Route[]): number {
  let best = -1;
  let bestLen = -1;
  for (let i = 0; i < routes.length; i++) {
    const h = routes[i]!.host;
    if (h.startsWith("*.")) {
      const suffix = h.slice(1);
      if (name.length > suffix.length && name.endsWith(suffix) && suffix.length > bestLen) {
        best = i;
        bestLen = suffix.length;
      }
    } else if (h === name) {
      return i;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Paths

/** Why a raw path (no query) is ambiguous, or undefined when it is spelled plainly. */
export function ambiguousPath(path: string): string | undefined {
  if (!path.startsWith("/")) return "the path does not start with /";
  if (/[^\x21-\x7e]/.test(path)) return "the path holds a space, control or non-ASCII byte";
  if (path.includes("#")) return "the request target holds a fragment (#)";
  if (path.includes("\\")) return "the path holds a backslash";
  if (path.includes(";")) return 'the path holds ";" (matrix/path parameters)';
  if (/%(?![0-9a-f]{2})/i.test(path)) return "the path holds a malformed percent-escape";
  if (/%2f/i.test(path)) return "the path holds an encoded slash (%2F)";
  if (/%5c/i.test(path)) return "the path holds an encoded backslash (%5C)";
  if (/%2e/i.test(path)) return "the path holds an encoded dot (%2E)";
  if (/%25/i.test(path)) return "the path holds an encoded percent (%25, double encoding)";
  if (/%00/.test(path)) return "the path holds an encoded NUL (%00)";
  const utf8 = malformedUtf8(percentDecodedBytes(path));
  if (utf8) return `the path's percent-escapes are not well-formed UTF-8 (${utf8}); overlong forms such as %c0%ae or %e0%80%af spell "." and "/" to a lenient decoder`;
  const segments = path.slice(1).split("/");
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === "." || s === "..") return `the path holds a dot segment ("${s}")`;
    if (s === "" && i < segments.length - 1) return "the path holds an empty segment (//)";
  }
  return undefined;
}

/** The bytes a path stands for once its percent-escapes are decoded (the path is ASCII by now). */
export function percentDecodedBytes(path: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < path.length; i++) {
    if (path[i] === "%" && /^[0-9a-f]{2}$/i.test(path.slice(i + 1, i + 3))) {
      out.push(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(path.charCodeAt(i));
  }
  return Uint8Array.from(out);
}

/**
 * Why `bytes` is not well-formed UTF-8 (RFC 3629 §4), or undefined when it is: an overlong
 * form, a surrogate, a code point above U+10FFFF, a stray or missing continuation byte.
 */
export function malformedUtf8(bytes: Uint8Array): string | undefined {
  const hex = (from: number, to: number) => [...bytes.subarray(from, to)].map((b) => "%" + b.toString(16).padStart(2, "0")).join("");
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    // Lead byte → sequence length and the range the FIRST continuation byte must be in
    // (narrowed for E0/ED/F0/F4: that is what excludes overlongs, surrogates and > U+10FFFF).
    let len: number, lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) [len, lo, hi] = [3, b === 0xe0 ? 0xa0 : 0x80, b === 0xed ? 0x9f : 0xbf];
    else if (b >= 0xf0 && b <= 0xf4) [len, lo, hi] = [4, b === 0xf0 ? 0x90 : 0x80, b === 0xf4 ? 0x8f : 0xbf];
    else return b === 0xc0 || b === 0xc1 ? `overlong ${hex(i, i + 2)}` : b < 0xc0 ? `stray continuation byte ${hex(i, i + 1)}` : `invalid byte ${hex(i, i + 1)}`;
    for (let k = 1; k < len; k++) {
      const c = bytes[i + k];
      const [min, max] = k === 1 ? [lo, hi] : [0x80, 0xbf];
      if (c === undefined || c < min || c > max) {
        const overlong = k === 1 && c !== undefined && c >= 0x80 && c < lo;
        return `${overlong ? "overlong" : c === undefined || c < 0x80 || c > 0xbf ? "truncated" : "out-of-range"} ${hex(i, Math.min(i + len, bytes.length))}`;
      }
    }
    i += len;
  }
  return undefined;
}

/** Segment-aware prefix: "/a/b" admits "/a/b" and "/a/b/…", not "/a/bc"; "/a/" admits "/a/…". */
export function pathAllowed(path: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) {
    if (p === "/" || path === p) return true;
    if (path.startsWith(p) && (p.endsWith("/") || path[p.length] === "/")) return true;
  }
  return false;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** True for git smart-HTTP push in any spelling: the receive-pack endpoint or its advertisement. */
export function isGitPush(target: string, headers: EgressRequest["headers"]): boolean {
  const t = target.toLowerCase();
  if (t.includes("git-receive-pack") || safeDecode(t).replace(/\+/g, "-").includes("git-receive-pack")) return true;
  const ct = headerValues(headers, "content-type").join(",").toLowerCase();
  return ct.includes("git-receive-pack");
}

// ---------------------------------------------------------------------------------------------
// Credentials

function headerValues(headers: EgressRequest["headers"], name: string): string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return typeof v === "string" ? [v] : [...v];
}

/** The agent's placeholder credential, in any of the spellings a client sends it. */
export function isPlaceholder(value: string): boolean {
  const v = value.trim();
  if (v === AGENT_PLACEHOLDER_TOKEN) return true;
  const m = /^(?:bearer|token)\s+(\S+)$/i.exec(v);
  return m !== null && m[1] === AGENT_PLACEHOLDER_TOKEN;
}

/** The header a route injects (lower-case name for comparison, as-written name for sending). */
export function injectedHeaderName(route: Route): string | undefined {
  if (!route.auth) return undefined;
  const s = route.auth.scheme;
  return s.startsWith("header:") ? s.slice("header:".length) : "Authorization";
}

export function credentialValue(scheme: string, token: string): string {
  if (scheme === "bearer") return `Bearer ${token}`;
  if (scheme === "token") return `token ${token}`;
  if (scheme === "basic") return `Basic ${Buffer.from(token, "utf8").toString("base64")}`;
  return token;
}

// ---------------------------------------------------------------------------------------------
// The decision

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function describe(reason: DenyReason, host: string, method: string, path: string, detail?: string): string {
  switch (reason) {
    case "bad_request":
      return `The request was malformed${detail ? `: ${detail}` : ""}.`;
    case "upgrade_not_supported":
      return "Protocol upgrades (WebSocket, h2c) are not proxied by egress.";
    case "bad_host":
      return `"${host}" is not a valid DNS host name.`;
    case "ip_literal":
      return `"${host}" is an IP address; egress routes match host names only, so IP-literal destinations are always refused.`;
    case "port_not_allowed":
      return `Only the default port is allowed (443 for https, 80 for http)${detail ? `; got ${detail}` : ""}.`;
    case "host_mismatch":
      return `The request names another host than the tunnel it was sent in${detail ? ` (${detail})` : ""}; the CONNECT target is authoritative.`;
    case "sni_mismatch":
      return `The TLS SNI names another host than the CONNECT target${detail ? ` (${detail})` : ""}.`;
    case "ambiguous_path":
      return `The path is ambiguous (${detail}); spell it without dot segments, encoded slashes or dots, ";" or "//". It is refused, not normalised.`;
    case "git_push":
      return "git push over HTTP(S) is refused on every host: pushes go through git-gate (the remote's insteadOf rewrite).";
    case "no_route":
      return `No egress route allows ${host}.`;
    case "path_not_allowed":
      return `The route for ${host} does not allow the path ${path}.`;
    case "method_not_allowed":
      return `The route for ${host} does not allow the method ${method}.`;
    case "cleartext_credential":
      return `The route for ${host} injects a credential, which is never sent over cleartext http; use https.`;
    case "token_missing":
      return `The route for ${host} injects a credential, but egress was started without its token (${detail}); the request is refused rather than sent without it.`;
    case "agent_credential":
      return `The request carries its own credential (${detail}) to ${host}, whose route injects one; egress refuses rather than merge the two. Send the request without credentials.`;
  }
}

function deny(
  req: EgressRequest,
  ctx: DecideContext,
  reason: DenyReason,
  host: string,
  path: string,
  detail?: string,
  extra: { routeIndex?: number; route?: Route } = {},
): Deny {
  const method = req.method.toUpperCase();
  const d: Deny = { action: "deny", status: 403, reason, message: describe(reason, host, method, path, detail), host, method, path };
  if (extra.routeIndex !== undefined) d.routeIndex = extra.routeIndex;
  if (ctx.superviseTool && extra.route && ROUTE_FIXABLE.has(reason)) d.howToAsk = { tool: ctx.superviseTool, route: extra.route };
  return d;
}

function originForm(rest: string): string {
  return rest === "" || rest.startsWith("?") ? "/" + rest : rest;
}

/** Pull host, port and origin-form target out of a request. */
function locate(req: EgressRequest): { ok: true; hostRaw: string; port: number; target: string } | { ok: false; reason: DenyReason; detail: string; hostRaw: string } {
  const abs = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is.exec(req.target);
  if (req.scheme === "https") {
    const hostRaw = req.connectHost ?? "";
    const port = req.connectPort ?? 443;
    if (abs) {
      // Absolute-form inside a tunnel: its authority must be the tunnel's.
      const auth = splitHostPort(abs[2]!);
      const other = auth ? parseHost(auth.host) : undefined;
      const mine = parseHost(hostRaw);
      if (abs[1]!.toLowerCase() !== "https" || !auth || abs[2]!.includes("@") || !other || other.kind !== "name" || mine.kind !== "name" || other.name !== mine.name || (auth.port ?? 443) !== port) {
        return { ok: false, reason: "host_mismatch", detail: `request target ${abs[1]}://${abs[2]}`, hostRaw };
      }
      return { ok: true, hostRaw, port, target: originForm(abs[3]!) };
    }
    return { ok: true, hostRaw, port, target: req.target };
  }
  if (!abs || abs[1]!.toLowerCase() !== "http") return { ok: false, reason: "bad_request", detail: "a cleartext proxy request needs an absolute http:// URI", hostRaw: "" };
  if (abs[2]!.includes("@")) return { ok: false, reason: "bad_request", detail: "userinfo in the URI", hostRaw: abs[2]! };
  const auth = splitHostPort(abs[2]!);
  if (!auth) return { ok: false, reason: "bad_host", detail: "malformed authority", hostRaw: abs[2]! };
  return { ok: true, hostRaw: auth.host, port: auth.port ?? 80, target: originForm(abs[3]!) };
}

/** Decide one request. Pure: same input, same decision. */
export function decide(req: EgressRequest, routes: readonly Route[], ctx: DecideContext = {}): Decision {
  const method = req.method.toUpperCase();
  const loc = locate(req);
  const rawPath = loc.ok ? loc.target.split("?", 1)[0]! : "";
  const path = rawPath;
  if (!loc.ok) return deny(req, ctx, loc.reason, loc.hostRaw, path, loc.detail);

  if (!TOKEN_RE.test(req.method)) return deny(req, ctx, "bad_request", loc.hostRaw, path, `invalid method "${req.method}"`);
  if (headerValues(req.headers, "upgrade").length > 0) return deny(req, ctx, "upgrade_not_supported", loc.hostRaw, path);

  // Host and port.
  const ph = parseHost(loc.hostRaw);
  if (ph.kind === "ip") return deny(req, ctx, "ip_literal", loc.hostRaw, path);
  if (ph.kind === "invalid") return deny(req, ctx, "bad_host", loc.hostRaw, path);
  const host = ph.name;
  const defaultPort = req.scheme === "https" ? 443 : 80;
  if (loc.port !== defaultPort) return deny(req, ctx, "port_not_allowed", host, path, String(loc.port));

  // The CONNECT target (or the URI authority) is authoritative.
  const hostHeaders = headerValues(req.headers, "host");
  if (hostHeaders.length > 1) return deny(req, ctx, "host_mismatch", host, path, "more than one Host header");
  if (hostHeaders.length === 1) {
    const hh = splitHostPort(hostHeaders[0]!.trim());
    const hp = hh ? parseHost(hh.host) : undefined;
    if (!hh || !hp || hp.kind !== "name" || hp.name !== host || (hh.port !== undefined && hh.port !== loc.port)) {
      return deny(req, ctx, "host_mismatch", host, path, `Host: ${hostHeaders[0]}`);
    }
  }
  if (req.scheme === "https" && req.sni !== undefined && req.sni !== "") {
    const sp = parseHost(req.sni);
    if (sp.kind !== "name" || sp.name !== host) return deny(req, ctx, "sni_mismatch", host, path, `SNI ${req.sni}`);
  }

  // Path spelling, then git push (before any route: it is refused everywhere).
  const amb = ambiguousPath(rawPath);
  if (amb) return deny(req, ctx, "ambiguous_path", host, path, amb);
  if (isGitPush(loc.target, req.headers)) return deny(req, ctx, "git_push", host, path);

  // Route.
  const routeIndex = findRoute(host, routes);
  if (routeIndex < 0) return deny(req, ctx, "no_route", host, path, undefined, { route: { host } as Route });
  const route = routes[routeIndex]!;

  const knownMethod = (HTTP_METHODS as readonly string[]).includes(method);
  const methodOk = knownMethod && (!route.methods || (route.methods as readonly string[]).includes(method));
  const pathOk = !route.path_allowlist || pathAllowed(rawPath, route.path_allowlist);
  if (!pathOk || !methodOk) {
    const widened: Route = { ...route };
    if (!pathOk) widened.path_allowlist = [...route.path_allowlist!, rawPath];
    if (!methodOk && route.methods && knownMethod) widened.methods = [...route.methods, method as (typeof HTTP_METHODS)[number]];
    const fixable = knownMethod || methodOk;
    return deny(req, ctx, !pathOk ? "path_not_allowed" : "method_not_allowed", host, path, undefined, { routeIndex, route: fixable ? widened : undefined });
  }

  // Credentials.
  const injectName = injectedHeaderName(route);
  const credNames: string[] = [...CREDENTIAL_HEADERS];
  if (injectName && !credNames.includes(injectName.toLowerCase())) credNames.push(injectName.toLowerCase());
  const present = credNames.filter((n) => headerValues(req.headers, n).length > 0);
  let inject: Allow["inject"];
  if (route.auth) {
    if (req.scheme !== "https") return deny(req, ctx, "cleartext_credential", host, path, undefined, { routeIndex });
    const token = ctx.tokens?.[route.auth.token_ref];
    if (!token) return deny(req, ctx, "token_missing", host, path, `environment variable ${route.auth.token_ref} is not set`, { routeIndex });
    const real = present.filter((n) => headerValues(req.headers, n).some((v) => !isPlaceholder(v)));
    if (real.length) return deny(req, ctx, "agent_credential", host, path, real.join(", "), { routeIndex });
    inject = { name: injectName!, value: credentialValue(route.auth.scheme, token) };
  }
  const allow: Allow = { action: "allow", reason: "route", routeIndex, route, host, port: loc.port, path, upstreamTarget: loc.target, strip: present };
  if (inject) {
    allow.inject = inject;
    allow.redact = redactionValues(ctx.tokens![route.auth!.token_ref]!, inject.value);
  }
  return allow;
}

/**
 * The CONNECT itself: refuse only what no tunnel could make right (a malformed target, an IP
 * literal, a non-443 port). A host without a route is still tunnelled, so the agent reads the
 * 403 body explaining how to ask for it on its first request.
 */
export function decideConnect(authority: string, ctx: DecideContext = {}): { action: "allow"; host: string; port: number } | Deny {
  const hp = splitHostPort(authority);
  const fake: EgressRequest = { scheme: "https", method: "CONNECT", target: authority, headers: {} };
  if (!hp || hp.port === undefined) return deny(fake, ctx, "bad_request", authority, "", "CONNECT needs host:port");
  const ph = parseHost(hp.host);
  if (ph.kind === "ip") return deny(fake, ctx, "ip_literal", hp.host, "");
  if (ph.kind === "invalid") return deny(fake, ctx, "bad_host", hp.host, "");
  if (hp.port !== 443) return deny(fake, ctx, "port_not_allowed", ph.name, "", String(hp.port));
  return { action: "allow", host: ph.name, port: hp.port };
}

/** The JSON body of a refusal (what the agent reads). */
export function denyBody(d: Deny): Record<string, unknown> {
  const body: Record<string, unknown> = { blocked: true, reason: d.reason, message: d.message, host: d.host, method: d.method, path: d.path };
  if (d.howToAsk) {
    body.how_to_ask = {
      tool: d.howToAsk.tool,
      route: d.howToAsk.route,
      hint: `Call the ${d.howToAsk.tool} tool with this route to ask the operator for access; the request works once it is approved.`,
    };
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// pipelock's refusals. pipelock (the next hop) answers a request it blocks with an ordinary HTTP
// error, text/plain, carrying its block-reason header set (pipelock internal/blockreason/
// blockreason.go, set by internal/proxy/blockheaders.go writeBlockedError on the forward,
// CONNECT and intercepted paths): X-Pipelock-Block-Reason (a fixed code) with
// X-Pipelock-Block-Reason-Version 1, plus -Severity, -Retry, -Layer (the scanner), and
// X-Pipelock-Hint with explain_blocks (we render it on). An upstream could send those headers
// too; that can only make egress record a refusal, never let something through.

export interface PipelockBlock {
  status: number;
  /** X-Pipelock-Block-Reason: dlp_match, ssrf_private_ip, data_budget, parse_error, … */
  code: string;
  /** X-Pipelock-Block-Reason-Layer: the scanner (allowlist, body_dlp, ssrf, tls_response_blocked, …). */
  layer?: string;
  retry?: string;
  hint?: string;
  /** pipelock's own words (the first line of its body, e.g. "blocked: request body contains secret: AWS Access ID"). */
  detail: string;
}

/** The manifest keys (pipelock.*) that raise pipelock's size caps; the operator's to change. */
export const PIPELOCK_CAP_KEYS = { response: "pipelock.max_response_mib", body: "pipelock.max_body_mib" } as const;

/** pipelock's refusal in a response, or undefined when the response is not one. */
export function pipelockBlock(status: number, headers: Readonly<Record<string, string | readonly string[] | undefined>>, body: string): PipelockBlock | undefined {
  const one = (name: string) => {
    const v = headers[name];
    return typeof v === "string" ? v : v?.[0];
  };
  const code = one("x-pipelock-block-reason");
  if (status < 400 || !code || one("x-pipelock-block-reason-version") !== "1") return undefined;
  const b: PipelockBlock = { status, code, detail: body.split("\n")[0]!.trim().slice(0, 300) };
  const layer = one("x-pipelock-block-reason-layer");
  const retry = one("x-pipelock-block-reason-retry");
  const hint = one("x-pipelock-hint");
  if (layer) b.layer = layer;
  if (retry) b.retry = retry;
  if (hint) b.hint = hint.slice(0, 300);
  return b;
}

/** An allowlist refusal: pipelock labels it with the allowlist scanner (its reason code is the catch-all parse_error). */
function isAllowlistBlock(b: PipelockBlock): boolean {
  return b.layer === "allowlist" || /domain not in allowlist/.test(b.detail);
}

/** What the agent can do about a pipelock refusal, in words. */
function pipelockAdvice(b: PipelockBlock, host: string, ctx: DecideContext): string {
  if (isAllowlistBlock(b)) {
    return ctx.pipelockTool
      ? `${host} is not on pipelock's allowlist. Ask the operator with the ${ctx.pipelockTool} tool: send get_current_config's extra_allowlist plus "${host}".`
      : `${host} is not on pipelock's allowlist, and supervise is off: only the operator can add it (the manifest's pipelock.allowlist).`;
  }
  // pipelock labels a fail-closed body (too big, compressed) with the body scanner's code: its words say which
  if (b.code === "data_budget" || /max_body_bytes|too large|scan ceiling/.test(b.detail)) {
    return `The transfer is larger than what pipelock scans (its size caps). Only the operator can raise them (the manifest's ${PIPELOCK_CAP_KEYS.response} / ${PIPELOCK_CAP_KEYS.body}); a smaller download or upload works.`;
  }
  if (b.code === "compressed_response" || /compressed|Content-Encoding/.test(b.detail)) return "pipelock cannot scan compressed content, so it refuses it: send or ask for it uncompressed.";
  if (b.code === "dlp_match") return "pipelock found what looks like a secret in the request. Secrets never leave the bottle, and no proposal changes that: send the request without it.";
  if (b.code.startsWith("ssrf")) return `${host} resolves to an internal address; pipelock's SSRF guard refuses that. Only the operator can exempt an address range (the manifest's pipelock.ssrf_ip_allowlist).`;
  if (b.retry === "transient") return "This is temporary (a rate limit or a pause): retry later.";
  return "Only the operator can change pipelock's policy.";
}

/** The refusal egress answers the agent with (and audits) when pipelock refused a request it forwarded. */
export function pipelockRefusal(b: PipelockBlock, req: { host: string; method: string; path: string }, ctx: DecideContext = {}): { status: number; reason: "pipelock_blocked"; body: Record<string, unknown> } {
  const body: Record<string, unknown> = {
    blocked: true,
    layer: "pipelock",
    reason: "pipelock_blocked",
    pipelock_reason: b.code,
    message: `pipelock, the bottle's outbound firewall behind egress, refused this request: ${b.detail || b.code}. ${pipelockAdvice(b, req.host, ctx)}`,
    host: req.host,
    method: req.method,
    path: req.path,
  };
  if (b.hint) body.pipelock_hint = b.hint;
  if (ctx.pipelockTool && isAllowlistBlock(b)) {
    body.how_to_ask = {
      tool: ctx.pipelockTool,
      add_to_allowlist: req.host,
      hint: `Call the ${ctx.pipelockTool} tool with the full extra allowlist (get_current_config's extra_allowlist) plus "${req.host}"; the request works once the operator approves.`,
    };
  }
  return { status: b.status, reason: "pipelock_blocked", body };
}
