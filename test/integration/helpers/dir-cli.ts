// The operator CLI (cli/bottle.ts) with its bottles found in a directory (test/helpers/dir-bottles.ts,
// CBTEST_BOTTLES_DIR) instead of through the Docker API: for driving the real dashboard in a
// terminal without an engine. Everything else is the CLI's own: main, runDashboard, the TTY.
import { main } from "../../../cli/commands.ts";
import { runDashboard } from "../../../cli/dashboard.ts";
import { dirBottles } from "../../helpers/dir-bottles.ts";

const dir = process.env.CBTEST_BOTTLES_DIR;
if (!dir) throw new Error("CBTEST_BOTTLES_DIR is not set");
const io = { out: (l: string) => process.stdout.write(l + "\n"), err: (l: string) => process.stderr.write(l + "\n") };
const bottles = dirBottles(dir);
const ctx = { io, bottles, color: process.stdout.isTTY === true, dashboard: () => runDashboard({ io, bottles }, process.stdin, process.stdout) };
process.exitCode = await main(process.argv.slice(2), ctx);
