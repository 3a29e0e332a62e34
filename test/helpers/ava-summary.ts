// Counting an ava run from its default reporter's output. ava prints "N tests passed" only when
// nothing failed, so passes are counted from the per-test "✔" lines (not "✔ [expected fail]":
// ava counts a known failure apart, and so do we); failures, skips and todos from its closing
// lines, which it always prints. Test-log lines are indented deeper ("    ℹ …") and never counted.

export interface AvaCounts {
  passed: number;
  failed: number;
  skipped: number;
}

const sum = (out: string, re: RegExp) => [...out.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);

export function avaCounts(out: string): AvaCounts {
  const text = out.replace(/\r\n/g, "\n");
  const ticks = (text.match(/^ {2}\u2714 (?!\[expected fail\])/gm) ?? []).length;
  return {
    // When ava did print its own total (a clean run), the two agree; the per-test lines are what every run has.
    passed: Math.max(ticks, sum(text, /^\s*(\d+) tests? passed/gm)),
    failed: sum(text, /^\s*(\d+) tests? failed/gm) + sum(text, /^\s*(\d+) uncaught exceptions?/gm) + sum(text, /^\s*(\d+) unhandled rejections?/gm),
    skipped: sum(text, /^\s*(\d+) tests? skipped/gm) + sum(text, /^\s*(\d+) tests? todo/gm),
  };
}

/**
 * The lines that say what failed ("✘ [fail]: …", a timed-out or crashed worker), so the closing
 * summary repeats them: a CI log shown by its tail must still name the failing test.
 */
export function avaFailures(out: string): string[] {
  return out
    .replace(/\r\n/g, "\n")
    .split("\n")
    .filter((l) => /^ {2}\u2718 /.test(l) || /^\s*(Uncaught exception in|Unhandled rejection in|Timed out while running tests|✘ Timed out)/.test(l))
    .map((l) => l.trim());
}
