// The fleet example's stack program: hosts and agents from stack config (Pulumi.<stack>.yaml),
// the bottles from fleet.ts. See README.md next to it.
import * as pulumi from "@pulumi/pulumi";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fleetProgram, type FleetHost } from "./fleet.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const config = new pulumi.Config("fleet");

export default () =>
  fleetProgram({
    manifest: path.resolve(here, config.get("manifest") || "claude-bottle.yaml"),
    hosts: config.requireObject<FleetHost[]>("hosts"),
    subnets: { cidr: config.get("subnetPool") || "10.200.0.0/16", networkPrefix: config.getNumber("networkPrefix") ?? 26 },
    projectDir: here,
  });
