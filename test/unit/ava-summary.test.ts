// test/run.ts's closing line: counted from ava's output, also when ava leaves out "N tests passed".
import test from "ava";
import { avaCounts, avaFailures } from "../helpers/ava-summary.ts";

// ava 7's default reporter, non-TTY, as test/run.ts reads it (abridged from real runs).
const failing = [
  "",
  "  - [skip] d skipped",
  "  - [todo] e todo",
  "  ✔ a › passes (12ms)",
  "    ℹ a log line",
  "    ℹ ✔ a log line that looks like a pass",
  "  ✔ b passes",
  "  ✘ [fail]: c fails boom",
  "  ✔ [expected fail] k known",
  "  ✘ [fail]: f throws Error thrown in test",
  "  ─",
  "",
  "  c fails",
  "",
  "  2 tests failed",
  "  1 known failure",
  "  1 test skipped",
  "  1 test todo",
].join("\n");

test("a run with failures: passes come from the ✔ lines (ava prints no 'passed' total then)", (t) => {
  t.deepEqual(avaCounts(failing), { passed: 2, failed: 2, skipped: 2 });
});

test("47 passes and 2 failures are summarised as such, not as 0 passed", (t) => {
  const out = [...Array.from({ length: 47 }, (_, i) => `  ✔ test ${i}`), "  ✘ [fail]: x", "  ✘ [fail]: y", "  ─", "", "  2 tests failed"].join("\n");
  t.deepEqual(avaCounts(out), { passed: 47, failed: 2, skipped: 0 });
});

test("a clean run: ava's own total and the ✔ lines agree", (t) => {
  t.deepEqual(avaCounts("  ✔ a\n  ✔ b\n  ─\n\n  2 tests passed\n"), { passed: 2, failed: 0, skipped: 0 });
});

test("uncaught exceptions and unhandled rejections count as failures; CRLF output is read too", (t) => {
  t.deepEqual(avaCounts("  ✔ a\r\n  ─\r\n\r\n  1 uncaught exception\r\n  2 unhandled rejections\r\n"), { passed: 1, failed: 3, skipped: 0 });
});

test("nothing recognisable counts as nothing (run.ts then fails the tier on its exit code)", (t) => {
  t.deepEqual(avaCounts("✖ Couldn't find any files to test\n"), { passed: 0, failed: 0, skipped: 0 });
});

test("the failing tests are named for the closing summary; passes and log lines are not", (t) => {
  const out = failing + "\n  ✘ Timed out while running tests\n  Uncaught exception in test/x.test.ts\n";
  t.deepEqual(avaFailures(out), [
    "✘ [fail]: c fails boom",
    "✘ [fail]: f throws Error thrown in test",
    "✘ Timed out while running tests",
    "Uncaught exception in test/x.test.ts",
  ]);
});
