// The claude-bottle policy pack. Only constructs the pack: the policies live in their own modules
// (see all.ts) so tests call their validateResource/validateStack directly.
import { PolicyPack } from "@pulumi/policy";
import { ALL_POLICIES, PACK_NAME } from "./all.ts";

new PolicyPack(PACK_NAME, { policies: ALL_POLICIES });
