// The fake internet: test servers in containers this suite creates, on a network of its own
// (`<prefix>internet`, --internal, a free 10.213.x.0/24). Each bottle's `outside` network gets
// the servers attached too (docker network connect), and the bottle's manifest maps real host
// names to their addresses there (extra_hosts), with the test CA as an extra upstream CA.
//
//   web       HTTPS (443) + HTTP (80) echo: method, path, headers, body → JSON; logs everything
//   sink      the exfil sink: records every TCP connection/bytes and UDP datagram on many ports
//   intranet  a sink that stands for an internal service (not SSRF-allowlisted)
//   git       sshd git upstream (user git, bare repo /srv/git/repo.git with branch main), a
//             test key pair made at start; its host key is pinned in the manifest
//
// The test PKI is kept on disk (CLAUDE_BOTTLE_CACHE/cbtest-e2e-pki) and reused while valid:
// the CA is part of the agent image's build args (extra_ca_files → BUILD_EXTRA_CA_PEM), so a
// fresh CA per run would invalidate the cached npm install layer.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { docker, dockerOk, sleep } from "./lib/docker.ts";
import { tarFiles } from "./lib/tar.ts";

x509.cryptoProvider.set(crypto.webcrypto as unknown as Crypto);

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Label on what the fake internet creates (its own objects; the bottles are named by the run prefix). */
const RUN_LABEL = "dev.claude-bottle.e2e-run";
export const WEB_NAMES = ["api.anthropic.com", "api.github.com", "unlisted.example", "exfil.example", "internal.example", "metadata.example", "approved.example"];
export const SERVERS = ["web", "sink", "intranet", "git"] as const;
export const GIT_HOST = "git.example.test";
export type ServerName = (typeof SERVERS)[number];

// ------------------------------------------------------------------------------------------
// Tools image: the base + node, curl, git, sshd. Cached by content hash (kept between runs).
// ------------------------------------------------------------------------------------------

export async function ensureToolsImage(baseImage: string, log: (s: string) => void = console.log): Promise<string> {
  const dir = path.join(HERE, "fake-internet");
  const files = ["Dockerfile.tools", "servers.mjs", "standin.sh"];
  const h = crypto.createHash("sha256").update(baseImage);
  for (const f of files) h.update(fs.readFileSync(path.join(dir, f)));
  const ref = `cbtest/e2e-tools:${h.digest("hex").slice(0, 12)}`;
  const have = await docker(["image", "inspect", "-f", "{{.Id}}", ref]);
  if (have.code === 0) return ref;
  const t0 = Date.now();
  log(`building ${ref} FROM ${baseImage} (cold: apt-get nodejs curl git openssh)`);
  await dockerOk(["build", "--force-rm", "-f", path.join(dir, "Dockerfile.tools"), "--build-arg", `BASE_IMAGE=${baseImage}`, "-t", ref, dir], { timeoutMs: 15 * 60_000 });
  log(`built ${ref} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return ref;
}

// ------------------------------------------------------------------------------------------
// Test PKI (real crypto): a CA and one leaf for every fake-internet name.
// ------------------------------------------------------------------------------------------

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

async function keyPair() {
  return (await crypto.webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function pkcs8Pem(k: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.webcrypto.subtle.exportKey("pkcs8", k));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
}

export async function makeTestPki(names: string[], days = 2) {
  const caKeys = await keyPair();
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(8).toString("hex"),
    name: "CN=claude-bottle e2e fake-internet CA",
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 24 * 3600_000),
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leafKeys = await keyPair();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(8).toString("hex"),
    subject: `CN=${names[0]}`,
    issuer: ca.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 24 * 3600_000),
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: "dns" as const, value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return { caPem: ca.toString("pem") + "\n", leafPem: (await pkcs8Pem(leafKeys.privateKey)) + leaf.toString("pem") + "\n" + ca.toString("pem") + "\n" };
}

/** The test PKI, reused from the cache dir while it has more than 2 days left (see header). */
export async function cachedTestPki(names: string[]): Promise<{ caPem: string; leafPem: string }> {
  const root = process.env.CLAUDE_BOTTLE_CACHE ?? path.join(os.homedir(), ".cache", "claude-bottle");
  const dir = path.join(root, "cbtest-e2e-pki");
  const file = path.join(dir, `pki-${crypto.createHash("sha256").update(names.join(",")).digest("hex").slice(0, 12)}.json`);
  try {
    const c = JSON.parse(fs.readFileSync(file, "utf8"));
    if (new Date(new x509.X509Certificate(c.caPem).notAfter).getTime() - Date.now() > 2 * 24 * 3600_000) return c;
  } catch {
    /* none or unreadable: make one */
  }
  const pki = await makeTestPki(names, 30);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(pki), { mode: 0o600 });
  fs.renameSync(tmp, file);
  return pki;
}

/** The sshd git upstream's start (root in the tools image): keys, user git (git-shell), a bare repo with main. */
const GIT_SERVER_SCRIPT = `set -e
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
ssh-keygen -q -t ed25519 -N '' -C cbtest-e2e-client -f /srv/client-key
useradd -m -d /home/git -s /usr/bin/git-shell git
mkdir -p /home/git/.ssh && cp /srv/client-key.pub /home/git/.ssh/authorized_keys
chown -R git:git /home/git/.ssh && chmod 700 /home/git/.ssh && chmod 600 /home/git/.ssh/authorized_keys
mkdir -p /srv/git /tmp/seed && git init -q --bare -b main /srv/git/repo.git
cd /tmp/seed && git init -q -b main && echo 'upstream seed' > README.md && git add README.md
git -c user.name=seed -c user.email=seed@example.invalid commit -q -m 'seed commit'
git push -q /srv/git/repo.git main && chown -R git:git /srv/git
/usr/sbin/sshd -D -e -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o HostKey=/etc/ssh/ssh_host_ed25519_key -o AllowUsers=git &
echo git up
wait`;

// ------------------------------------------------------------------------------------------

async function usedSubnets(): Promise<string[]> {
  const ids = (await dockerOk(["network", "ls", "-q"])).split("\n").filter(Boolean);
  if (!ids.length) return [];
  const out = await dockerOk(["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids]);
  return out.split(/\s+/).filter(Boolean);
}

export interface LogEntry {
  t: string;
  proto: string;
  event?: string;
  port?: number;
  from?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  text?: string;
  hex?: string;
  sni?: string;
}

export class FakeInternet {
  readonly network: string;
  subnet = "";
  readonly ips: Record<ServerName, string> = { web: "", sink: "", intranet: "", git: "" };
  /** The sshd git upstream: pinned host key ("ssh-ed25519 AAAA…"), a client key file, the URL. */
  git = { hostKey: "", identityFile: "", url: `ssh://git@${GIT_HOST}/srv/git/repo.git` };
  readonly names: Record<ServerName, string>;
  readonly dir: string;
  caFile = "";
  private connected: string[] = [];

  constructor(readonly prefix: string, readonly runId: string, readonly toolsImage: string) {
    this.network = `${prefix}internet`;
    this.names = { web: `${prefix}web`, sink: `${prefix}sink`, intranet: `${prefix}intranet`, git: `${prefix}git` };
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}pki-`));
  }

  async start(): Promise<void> {
    const used = await usedSubnets();
    let third = -1;
    for (let tries = 0; tries < 50; tries++) {
      const n = 1 + crypto.randomInt(250);
      if (!used.some((s) => s.startsWith(`10.213.${n}.`))) {
        third = n;
        break;
      }
    }
    if (third < 0) throw new Error("no free 10.213.x.0/24 subnet for the fake internet");
    this.subnet = `10.213.${third}.0/24`;
    await dockerOk(["network", "create", "--internal", "--subnet", this.subnet, "--label", `${RUN_LABEL}=${this.runId}`, this.network]);
    const pki = await cachedTestPki(WEB_NAMES);
    this.caFile = path.join(this.dir, "fake-internet-ca.pem");
    fs.writeFileSync(this.caFile, pki.caPem);
    const plan: [ServerName, number, string[]][] = [
      ["web", 10, ["/srv/servers.mjs", "web", "web"]],
      ["sink", 20, ["/srv/servers.mjs", "sink", "sink"]],
      ["intranet", 30, ["/srv/servers.mjs", "sink", "intranet"]],
      ["git", 40, ["-c", GIT_SERVER_SCRIPT]],
    ];
    for (const [server, host, cmd] of plan) {
      const ip = `10.213.${third}.${host}`;
      this.ips[server] = ip;
      await dockerOk([
        "create", "--name", this.names[server], "--network", this.network, "--ip", ip,
        "--label", `${RUN_LABEL}=${this.runId}`, "--entrypoint", server === "git" ? "sh" : "node", this.toolsImage, ...cmd,
      ]);
      if (server === "web") await dockerOk(["cp", "-", `${this.names.web}:/`], { input: tarFiles([{ path: "/srv/tls/web.pem", content: pki.leafPem, mode: 0o600, uid: 0, gid: 0 }]) });
      await dockerOk(["start", this.names[server]]);
    }
    // ready when each has written its first line to stdout
    for (const server of SERVERS) {
      if (server === "git") continue;
      for (let i = 0; i < 60; i++) {
        const r = await docker(["logs", this.names[server]]);
        if (/ up/.test(r.stdout)) break;
        if (i === 59) throw new Error(`fake internet ${server} did not start: ${r.stdout}${r.stderr}`);
        await sleep(250);
      }
    }
    for (let i = 0; ; i++) {
      const r = await docker(["logs", this.names.git]);
      if (/git up/.test(r.stdout)) break;
      if (i === 120) throw new Error(`fake internet git (sshd) did not start: ${r.stdout}${r.stderr}`);
      await sleep(250);
    }
    this.git.hostKey = (await dockerOk(["exec", this.names.git, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"])).split(/\s+/).slice(0, 2).join(" ");
    this.git.identityFile = path.join(this.dir, "git-client-key");
    fs.writeFileSync(this.git.identityFile, (await dockerOk(["exec", this.names.git, "cat", "/srv/client-key"])) + "\n", { mode: 0o600 });
  }

  /** The upstream repo's refs (`git for-each-ref`), and a file's content at a ref. */
  async gitUpstream(script: string): Promise<string> {
    return dockerOk(["exec", "-u", "git", this.names.git, "sh", "-c", `cd /srv/git/repo.git && ${script}`]);
  }

  /** Attach every server to a bottle's outside network; returns their addresses there. */
  async attach(network: string): Promise<Record<ServerName, string>> {
    const out = {} as Record<ServerName, string>;
    for (const server of SERVERS) {
      await dockerOk(["network", "connect", network, this.names[server]]);
      out[server] = await dockerOk(["inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, this.names[server]]);
    }
    this.connected.push(network);
    return out;
  }

  /** Everything a server has recorded so far. */
  async log(server: ServerName): Promise<LogEntry[]> {
    if (server === "git") return [];
    const r = await docker(["exec", this.names[server], "sh", "-c", `cat /srv/log/${server}.jsonl 2>/dev/null || true`]);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogEntry);
  }

  /** Counts per server, to compare before/after an attack. */
  async mark(): Promise<Record<ServerName, number>> {
    const m = {} as Record<ServerName, number>;
    for (const s of SERVERS) m[s] = (await this.log(s)).length;
    return m;
  }

  async since(mark: Record<ServerName, number>): Promise<Record<ServerName, LogEntry[]>> {
    const out = {} as Record<ServerName, LogEntry[]>;
    for (const s of SERVERS) out[s] = (await this.log(s)).slice(mark[s]);
    return out;
  }

  async stop(): Promise<void> {
    for (const s of SERVERS) await docker(["rm", "-f", this.names[s]]);
    await docker(["network", "rm", this.network]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
