// A BottleSource over a directory on this machine, for tests of the operator CLI without a
// Docker engine: each subdirectory stands in for one bottle's state volumes, laid out as the
// state container mounts them (store/layout.ts stateLayout(<dir>)), read and written with
// localIo. It mirrors store/bottles.ts dockerBottles: every bottle with a readable bottle.json,
// sorted by identity; an unreadable record is reported, not fatal. Not a product path: real
// bottles are found through the Docker API only.
import path from "node:path";
import { parseBottleRecord, type BottleSource, type FoundBottle } from "../../store/bottles.ts";
import { localIo } from "../../store/io.ts";
import { stateLayout } from "../../store/layout.ts";

export function dirBottles(home: string, host = { label: "test", address: "unix:///nonexistent/test.sock" }): BottleSource {
  return {
    where: home,
    async bottles(onBad) {
      const out: FoundBottle[] = [];
      for (const name of (await localIo.list(home)).sort()) {
        const layout = stateLayout(path.join(home, name));
        const text = await localIo.read(layout.record).catch(() => undefined);
        if (text === undefined) continue;
        try {
          out.push({ record: parseBottleRecord(text, layout.record), io: localIo, layout, endpoint: { host: host.address }, host });
        } catch (err) {
          onBad?.(`skipping ${layout.record}: ${(err as Error).message}`);
        }
      }
      return out.sort((a, b) => a.record.identity.localeCompare(b.record.identity));
    },
  };
}
