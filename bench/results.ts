// bench/RESULTS.md is written by hand around blocks the benches own: a block lies between
// `<!-- <key>:begin -->` and `<!-- <key>:end -->`, and a bench run replaces only its own block
// (appended at the end the first time), so the prose around it stays.
import fs from "node:fs";

export function writeBlock(file: string, key: string, body: string): void {
  const [b0, b1] = [`<!-- ${key}:begin -->`, `<!-- ${key}:end -->`];
  const text = fs.readFileSync(file, "utf8");
  const block = `${b0}\n${body.trim()}\n${b1}`;
  const i = text.indexOf(b0);
  const j = text.indexOf(b1);
  fs.writeFileSync(file, i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + b1.length) : `${text.trimEnd()}\n\n${block}\n`);
  console.log(`wrote the ${key} block of ${file}`);
}

/** A bench's entry: run `main`, then `cleanup` — also when `main` fails — and exit 0 or 1. */
export function runBench(main: () => Promise<void>, cleanup: () => Promise<void>): void {
  main()
    .then(() => cleanup())
    .then(() => process.exit(0))
    .catch(async (e) => {
      console.error(e);
      await cleanup();
      process.exit(1);
    });
}
