// Every sidecar Dockerfile takes its base images as build args whose defaults are the
// digests pinned in components/upstream-images.json, and the component passes exactly
// the args each Dockerfile declares; ports and paths it spells are the contracts'.
import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { DEFAULT_IMAGES, IMAGE_BUILD_ARGS, SIDECARS_DIR } from "../../components/images.ts";
import { AGENT_CA_FILE, AGENT_PATHS, AGENT_WORKSPACE } from "../../contracts/agent.ts";
import { EGRESS_HEALTH_PATH, EGRESS_PORT } from "../../contracts/egress.ts";
import { GIT_GATE_CONFIG_FILE, GIT_GATE_HEALTHCHECK, GIT_GATE_KEYS_DIR, GIT_GATE_PORT, GIT_GATE_UID } from "../../contracts/git-gate.ts";
import { ROLES } from "../../contracts/labels.ts";
import { SYSTEM_CA_BUNDLE } from "../../contracts/paths.ts";
import { PIPELOCK_CONFIG_FILE, PIPELOCK_PORT } from "../../contracts/pipelock.ts";
import { SUPERVISE_PORT } from "../../contracts/supervise.ts";

for (const role of ROLES) {
  test(`sidecars/${role}/Dockerfile: image build args default to the pinned digests`, (t) => {
    const text = fs.readFileSync(path.join(SIDECARS_DIR, role, "Dockerfile"), "utf8");
    const declared = Object.fromEntries([...text.matchAll(/^ARG ([A-Z_]+_IMAGE)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
    t.deepEqual(Object.keys(declared).sort(), [...IMAGE_BUILD_ARGS[role]].sort(), "declares exactly the args the component passes");
    for (const [arg, value] of Object.entries(declared)) t.is(value, DEFAULT_IMAGES[arg as keyof typeof DEFAULT_IMAGES], arg);
    const firstFrom = text.search(/^FROM /m);
    t.true(text.slice(0, firstFrom).includes("ARG BASE_IMAGE="), "BASE_IMAGE is declared before the first FROM");
    t.notRegex(text, /^FROM (?!\$\{)/m, "no FROM names an image directly");
  });
}

// What an image spells in shell or Dockerfile syntax (it cannot import the contracts) must
// equal the contract: one value, checked where it has to be written twice.
const read = (role: string, file = "Dockerfile") => fs.readFileSync(path.join(SIDECARS_DIR, role, file), "utf8");

test("images listen where the contracts say", (t) => {
  t.regex(read("egress"), new RegExp(`^EXPOSE ${EGRESS_PORT}$`, "m"));
  t.true(read("egress").includes(`http://127.0.0.1:${EGRESS_PORT}${EGRESS_HEALTH_PATH}`), "the image's own HEALTHCHECK asks the health path");
  t.regex(read("supervise"), new RegExp(`^EXPOSE ${SUPERVISE_PORT}$`, "m"));
  t.regex(read("pipelock"), new RegExp(`^EXPOSE ${PIPELOCK_PORT}$`, "m"));
  t.regex(read("git-gate"), new RegExp(`^EXPOSE ${GIT_GATE_PORT}$`, "m"));
  t.regex(read("git-gate"), new RegExp(`GIT_GATE_PORT=${GIT_GATE_PORT}\\b`));
});

test("images read their files where the components put them", (t) => {
  t.true(read("pipelock").includes(`CMD ["run", "--config", "${PIPELOCK_CONFIG_FILE}"]`));
  const gate = read("git-gate");
  t.true(gate.includes(`GIT_GATE_CONFIG=${GIT_GATE_CONFIG_FILE} `));
  t.true(gate.includes(`GIT_GATE_KEYS_DIR=${GIT_GATE_KEYS_DIR} `));
  t.true(gate.includes(`chown ${GIT_GATE_UID}:${GIT_GATE_UID} /srv/git /var/lib/git-gate`));
  t.true(gate.includes(`CMD ["${GIT_GATE_HEALTHCHECK}"]`));
  const agent = read("agent");
  t.true(agent.includes(`NODE_EXTRA_CA_CERTS=${AGENT_CA_FILE} `));
  t.true(agent.includes(`SSL_CERT_FILE=${SYSTEM_CA_BUNDLE} `));
  t.true(agent.includes(`ln -s ${AGENT_PATHS.gitconfig} /etc/gitconfig`));
  const entrypoint = read("agent", "entrypoint.sh");
  t.true(entrypoint.includes(`EGRESS_CA=${AGENT_CA_FILE}\n`));
  t.true(entrypoint.includes(`SYSTEM_BUNDLE=${SYSTEM_CA_BUNDLE}\n`));
  t.true(entrypoint.includes(`CONF=${path.posix.dirname(AGENT_PATHS.settings)}\n`));
  for (const p of [AGENT_PATHS.prompt, AGENT_PATHS.workspaceTar]) t.true(entrypoint.includes(`$CONF/${path.posix.basename(p)}`), p);
  t.true(entrypoint.includes(`WORKSPACE=\${CLAUDE_BOTTLE_WORKSPACE:-${AGENT_WORKSPACE}}`));
});
