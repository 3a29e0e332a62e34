// The library's public API.
export { Bottle, type BottleArgs } from "./bottle.ts";
export { BottleNetworks } from "./networks.ts";
export { CertificateAuthority } from "./ca.ts";
export { Pipelock } from "./pipelock.ts";
export { Egress } from "./egress.ts";
export { Supervise } from "./supervise.ts";
export { Agent } from "./agent.ts";
export { agentEnv } from "../contracts/agent.ts";
export { LiveConfigFile } from "./liveConfig.ts";
export { chooseRuntime, resolveRuntime, type RuntimeChoice, type RuntimeSeams } from "./runtime.ts";
export { bottleProgram, type ProgramOptions } from "./program.ts";
export { loadManifest, resolveBottle, DEFAULT_MANIFEST_FILE, type BottleSpec } from "./manifest/load.ts";
export { ManifestSchema, BottleManifestSchema } from "./manifest/schema.ts";
export { ConfigError } from "../contracts/validation.ts";
