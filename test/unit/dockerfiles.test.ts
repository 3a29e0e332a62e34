// Every sidecar Dockerfile takes its base images as build args whose defaults are the
// digests pinned in components/upstream-images.json, and the component passes exactly
// the args each Dockerfile declares.
import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { DEFAULT_IMAGES, IMAGE_BUILD_ARGS, SIDECARS_DIR } from "../../components/images.ts";
import { ROLES } from "../../contracts/labels.ts";

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
