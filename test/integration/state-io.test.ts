// dockerIo (store/docker.ts) against a real state container: the state image built from
// sidecars/state/Dockerfile on the hermetic base, fresh named volumes, and the container run as
// the component runs it (contracts/state.ts mounts, no network, read-only root, no
// capabilities, no-new-privileges, uid nobody). Every StateIo guarantee is checked through
// `docker exec`, and so is what makes a fresh volume writable: Docker copying the image's mount
// point (owned by nobody) into an empty volume — and what noCopy keeps another image from
// taking back. Not run (and failed) without a Docker engine.
import test from "ava";
import crypto from "node:crypto";
import path from "node:path";
import { NOBODY_UID } from "../../contracts/docker.ts";
import { STATE_COMMAND, STATE_VOLUMES, STATE_VOLUME_NAMES } from "../../contracts/state.ts";
import { SIDECARS_DIR } from "../../components/images.ts";
import { dockerIo, runDocker } from "../../store/docker.ts";
import { LockBusyError, type StateIo } from "../../store/io.ts";
import { stateLayout } from "../../store/layout.ts";
import { ensureTestImages } from "../e2e/images/build.ts";

const run = crypto.randomBytes(3).toString("hex");
const prefix = `cbtest-stateio-${run}-`;
const container = `${prefix}state`;
const volume = (v: string) => `${prefix}state-${v}`;
const local = { host: process.env.DOCKER_HOST || "unix:///var/run/docker.sock" };
const docker = (args: string[], input?: string) => runDocker(local, args, { input, timeoutMs: 15 * 60_000 });
const ok = async (args: string[], input?: string) => {
  const r = await docker(args, input);
  if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout.toString().trim();
};

let noDocker = "";
let base = "";
let io: StateIo;
const layout = stateLayout();
const inState = async (script: string) => ok(["exec", container, "sh", "-c", script]);

test.before(async (t) => {
  t.timeout(20 * 60_000, "building the hermetic base image and the state image");
  const info = await docker(["info", "--format", "{{.ServerVersion}}"]);
  if (info.code !== 0) {
    noDocker = `no Docker engine: ${info.stderr.trim().split("\n").pop()}`;
    return;
  }
  base = (await ensureTestImages({ log: (s) => t.log(s) })).BASE_IMAGE;
  const dirs = STATE_VOLUME_NAMES.map((v) => STATE_VOLUMES[v].path).join(" ");
  const image = `cbtest-local/state:${crypto.createHash("sha256").update(base + dirs).digest("hex").slice(0, 12)}`;
  if ((await docker(["image", "inspect", image])).code !== 0) {
    await ok(["build", "-q", "-t", image, "--build-arg", `BASE_IMAGE=${base}`, "--build-arg", `STATE_DIRS=${dirs}`, "--build-arg", `STATE_UID=${NOBODY_UID}`, path.join(SIDECARS_DIR, "state")]);
  }
  for (const v of STATE_VOLUME_NAMES) await ok(["volume", "create", volume(v)]);
  await ok([
    "run", "-d", "--name", container, "--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true", "--user", String(NOBODY_UID),
    ...STATE_VOLUME_NAMES.flatMap((v) => ["--mount", `type=volume,src=${volume(v)},dst=${STATE_VOLUMES[v].path}`]),
    image, ...STATE_COMMAND,
  ]);
  io = dockerIo(container, local);
});

test.after.always(async () => {
  if (noDocker) return;
  await docker(["rm", "-f", "-v", container]);
  for (const v of [...STATE_VOLUME_NAMES.map(volume), volume("copy-a"), volume("copy-b")]) await docker(["volume", "rm", "-f", v]);
});

const needsDocker = (t: { fail: (m: string) => void }) => {
  if (noDocker) t.fail(`NOT RUN: ${noDocker} — start Docker (bash test/e2e/images/ensure-engine.sh) to run the state container tests`);
  return !noDocker;
};

test.serial("fresh volumes: owned by nobody (the image's mount points, copied in at first mount), writable by the container's uid; the root stays read-only, and there is no network", async (t) => {
  if (!needsDocker(t)) return;
  for (const v of STATE_VOLUME_NAMES) t.is(await inState(`stat -c %u:%g ${STATE_VOLUMES[v].path}`), `${NOBODY_UID}:${NOBODY_UID}`, v);
  t.is(await inState("id -u"), String(NOBODY_UID));
  const root = await docker(["exec", container, "sh", "-c", "touch /x"]);
  t.not(root.code, 0, "read-only root");
  t.is(await inState("ls /sys/class/net"), "lo", "no network interface but loopback");
  t.is(await inState("grep CapEff /proc/self/status | tr -s ' \\t' ' '"), "CapEff: 0000000000000000");
});

test.serial("noCopy keeps another image's mount point from taking a fresh volume back (why the sidecars mount with it)", async (t) => {
  if (!needsDocker(t)) return;
  // Two fresh volumes, first mounted by the state container (owner nobody, still empty); then
  // a container of an image whose mount point is root's (/etc of the base) mounts each.
  for (const v of ["copy-a", "copy-b"]) await ok(["volume", "create", volume(v)]);
  for (const v of ["copy-a", "copy-b"]) await ok(["run", "--rm", "--network", "none", "--user", String(NOBODY_UID), "--mount", `type=volume,src=${volume(v)},dst=${STATE_VOLUMES.audit.path}`, (await ok(["inspect", "-f", "{{.Config.Image}}", container])), "true"]);
  const owner = async (v: string, opts: string) => ok(["run", "--rm", "--network", "none", "--mount", `type=volume,src=${volume(v)},dst=/etc${opts}`, base, "stat", "-c", "%u:%g", "/etc"]);
  t.is(await owner("copy-a", ",volume-nocopy"), `${NOBODY_UID}:${NOBODY_UID}`, "with noCopy: still nobody's");
  t.is(await owner("copy-b", ""), "0:0", "without: Docker copied /etc (root's) into the still-empty volume");
});

test.serial("read, write, create-once, append, tail, list, readAll, stamp through docker exec", async (t) => {
  if (!needsDocker(t)) return;
  const file = path.posix.join(layout.egressConfigDir, "routes.yaml");
  t.is(await io.read(file), undefined, "missing reads as undefined");
  t.is(await io.stamp(file), undefined);
  const big = "é".repeat(300_000) + "\nend\n";
  await io.write(file, big, 0o640);
  t.is(await io.read(file), big, "bytes round-trip (UTF-8, > 512 KiB)");
  t.is(await inState(`stat -c '%a %u' ${file}`), `640 ${NOBODY_UID}`, "mode and owner");
  const s1 = await io.stamp(file);
  await io.write(file, "second\n");
  t.not(await io.stamp(file), s1, "the stamp changes with the file");
  t.is(await inState(`ls -A ${layout.egressConfigDir}`), "routes.yaml", "no temp file left behind");
  const decision = path.posix.join(layout.superviseDir, "decisions", "p-00000001.json");
  const both = await Promise.all([io.create(decision, "first\n"), io.create(decision, "second\n")]);
  t.deepEqual(both.sort(), [false, true], "exactly one create wins");
  t.regex((await io.read(decision))!, /^(first|second)\n$/, "and its content is whole");
  const log = path.posix.join(layout.auditDir, "supervise.jsonl");
  for (let i = 0; i < 5; i++) await io.append(log, `line ${i}\n`);
  t.is(await io.tail(log, 14), "line 3\nline 4\n");
  t.is(await io.tail(log, 10_000), [0, 1, 2, 3, 4].map((i) => `line ${i}\n`).join(""));
  t.is(await io.tail(path.posix.join(layout.auditDir, "none"), 10), undefined);
  await io.write(path.posix.join(layout.superviseDir, "proposals", "p a.json"), "A");
  await io.write(path.posix.join(layout.superviseDir, "proposals", "p-b.json"), "B\u0000?");
  t.deepEqual((await io.list(path.posix.join(layout.superviseDir, "proposals"))).sort(), ["p a.json", "p-b.json"]);
  t.deepEqual(await io.readAll(path.posix.join(layout.superviseDir, "proposals")), { "p a.json": "A", "p-b.json": "B\u0000?" });
  t.deepEqual(await io.list("/var/lib/claude-bottle/nowhere"), []);
  t.deepEqual(await io.readAll("/var/lib/claude-bottle/nowhere"), {});
});

test.serial("a reader never sees half a file while writers replace it", async (t) => {
  if (!needsDocker(t)) return;
  const file = path.posix.join(layout.pipelockConfigDir, "pipelock.yaml");
  const versions = ["a", "b", "c"].map((c) => c.repeat(200_000) + "\n");
  await io.write(file, versions[0]!);
  let stop = false;
  const seen = new Set<string>();
  const reader = (async () => {
    while (!stop) {
      const text = await io.read(file);
      seen.add(text === undefined ? "missing" : versions.includes(text) ? text[0]! : `TORN(${text.length})`);
    }
  })();
  for (let i = 0; i < 9; i++) await io.write(file, versions[i % 3]!);
  stop = true;
  await reader;
  t.false([...seen].some((s) => s.startsWith("TORN") || s === "missing"), [...seen].join(" "));
});

test.serial("locks: one holder at a time across callers; busy without waiting; a stale lock (its holder died) is taken over", async (t) => {
  if (!needsDocker(t)) return;
  const lock = path.posix.join(layout.superviseDir, ".apply.lock");
  const other = dockerIo(container, local);
  const order: string[] = [];
  await Promise.all(
    [io, other, io].map((x, i) =>
      x.lock(lock, async () => {
        order.push(`in${i}`);
        await new Promise((r) => setTimeout(r, 300));
        order.push(`out${i}`);
      }),
    ),
  );
  for (let i = 0; i < order.length; i += 2) t.is(order[i]!.replace("in", ""), order[i + 1]!.replace("out", ""), `no overlap: ${order.join(" ")}`);
  await t.throwsAsync(io.lock(lock, () => other.lock(lock, async () => "never", { waitMs: 0 })), { instanceOf: LockBusyError });
  t.is(await inState(`[ -e ${lock} ] && echo held || echo free`), "free", "released after the holder returned (or threw)");
  await inState(`mkdir ${lock} && touch -d '@'$(( $(date +%s) - 120 )) ${lock}`);
  t.is(await io.lock(lock, async () => "taken over", { waitMs: 2000 }), "taken over");
});

test.serial("an unreachable state container is an error naming it, never an empty answer", async (t) => {
  if (!needsDocker(t)) return;
  const gone = dockerIo(`${prefix}no-such-container`, local);
  await t.throwsAsync(gone.read("/etc/claude-bottle/egress/routes.yaml"), { message: /no-such-container.*No such container/ });
  await t.throwsAsync(gone.list("/etc"), { message: /No such container/ });
});
