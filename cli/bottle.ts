#!/usr/bin/env -S node --import tsx
// The operator CLI: `bottle pending | show | approve | reject | audit | dashboard`.
import { main } from "./commands.ts";
import { runDashboard } from "./dashboard.ts";

const io = { out: (l: string) => process.stdout.write(l + "\n"), err: (l: string) => process.stderr.write(l + "\n") };
const ctx = { io, color: process.stdout.isTTY === true, dashboard: () => runDashboard({ io }, process.stdin, process.stdout) };

main(process.argv.slice(2), ctx).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`bottle: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 70;
  },
);
