// docs/security.md's banner (test/e2e/report.ts): it says which pipelock the escape suite ran, and
// when it was the TEST-ONLY stand-in, every stand-in file it names exists (the claim stays true).
import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pipelockBanner } from "../e2e/report.ts";

const STANDIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../e2e/pipelock-standin");

test("with the stand-in, the banner says so first and names the stand-in files that mirror pipelock's, which exist", (t) => {
  const text = pipelockBanner("the real pipelock cannot be obtained here").join("\n");
  t.regex(text, /^> \*\*The pipelock layer in this run was the TEST-ONLY stand-in, not pipelock\.\*\*/);
  t.regex(text, /CBTEST_PIPELOCK_IMAGE/);
  // "(stand-in files ← pipelock files)": the left side of each arrow
  const flat = text.replace(/\n> /g, " ");
  const named = [...flat.matchAll(/\(([^()←]*)←/g)].flatMap((m) => [...m[1]!.matchAll(/`([^`]+\.go)`/g)].map((x) => x[1]!));
  t.true(named.length >= 8, named.join(", "));
  for (const f of new Set(named)) t.true(fs.existsSync(path.join(STANDIN, f)), `${f} is in test/e2e/pipelock-standin`);
  t.regex(text, /internal\/blockreason\/blockreason\.go/, "and the pipelock files they mirror");
});

test("with the real pipelock, the banner says that instead", (t) => {
  const text = pipelockBanner(undefined).join("\n");
  t.regex(text, /real pipelock/);
  t.notRegex(text, /stand-in/);
});
