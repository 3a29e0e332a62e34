// Every policy of the pack, in one list. index.ts builds the PolicyPack from it; tests and the
// unit-tier runner (test/unit/helpers/run-pack.ts) import it without constructing the pack (the
// PolicyPack constructor starts the analyzer's gRPC server).
import type { Policies } from "@pulumi/policy";
import { agentContainerPolicies } from "./agent-container.ts";
import { credentialPolicies } from "./credentials.ts";
import { imagePolicies } from "./images.ts";
import { liveConfigPolicies } from "./live-config.ts";
import { networkPolicies } from "./networks.ts";
import { sidecarContainerPolicies } from "./sidecar-container.ts";

export const PACK_NAME = "claude-bottle";

export const ALL_POLICIES: Policies = [...agentContainerPolicies, ...sidecarContainerPolicies, ...credentialPolicies, ...networkPolicies, ...liveConfigPolicies, ...imagePolicies];
