// Bottle networks. A network that holds the agent must be internal (no route out) and must not give
// its members the Docker host: with com.docker.network.bridge.inhibit_ipv4 the bridge gets no IPv4
// address, so there is no gateway address on the host to answer. The resource policy checks the
// networks the components label internal/link; the stack policy follows the agent's networksAdvanced
// names to the network resources, which only a stack policy can see together.
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import type { UnknownValueError } from "@pulumi/policy";
import { identityOf, INHIBIT_IPV4, isUnknownValueError, isAgentContainer, isBottleNetwork, isTrue, items, roleOf, TYPES, who } from "./resources.ts";

/** Why a network is not closed (no way out, no way to the Docker host), as imperative sentences. */
export function networkIsolationProblems(name: string, p: Record<string, any>): string[] {
  const out: string[] = [];
  if (!isTrue(p.internal)) out.push(`The network ${who(name)} must be internal (internal: true) so its members have no route out.`);
  const driver = p.driver;
  if (driver !== undefined && driver !== "" && driver !== "bridge") out.push(`The network ${who(name)} must use the bridge driver.`);
  const options = p.options ?? {};
  if (!isTrue(options[INHIBIT_IPV4])) out.push(`The network ${who(name)} must not give its members the Docker host (options "${INHIBIT_IPV4}": "true").`);
  if (isTrue(p.ipv6)) out.push(`The network ${who(name)} must not enable IPv6 (the bridge would get a host address).`);
  if (isTrue(p.ingress)) out.push(`The network ${who(name)} must not be an ingress network.`);
  // No check on ipamConfigs[].gateway: Docker's IPAM always reports one (in a stack policy and at
  // update, props are the provider's outputs), also with inhibit_ipv4, which is what keeps that
  // address off the bridge — checked above.
  return out;
}

export const bottleNetworkIsolated: ResourceValidationPolicy = {
  name: "bottle-network-isolated",
  description: "Bottle networks labelled internal or link must be internal bridges whose bridge has no host address.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: (args, report) => {
    if (!isBottleNetwork(args.type, args.props)) args.notApplicable("Policy only applies to bottle networks (label dev.claude-bottle.role).");
    const role = roleOf(args.props);
    if (role !== "internal" && role !== "link") return;
    for (const problem of networkIsolationProblems(args.name, args.props)) report(problem);
  },
};

export const agentNetworksInternal: StackValidationPolicy = {
  name: "agent-networks-internal",
  description: "Every network the agent container is attached to must be a declared, isolated network of its own bottle with role internal, and must not hold pipelock (which would bypass egress).",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateStack: (args, report) => {
    let unknown: UnknownValueError | undefined;
    const nameOf = (read: () => unknown): string | undefined => {
      try {
        const v = read();
        return typeof v === "string" ? v : undefined;
      } catch (e) {
        if (isUnknownValueError(e)) {
          unknown ??= e;
          return undefined;
        }
        throw e;
      }
    };
    const networks = new Map<string, PolicyResource>();
    for (const r of args.resources) {
      if (r.type !== TYPES.network) continue;
      for (const key of ["name", "id"]) {
        const n = nameOf(() => r.props[key]);
        if (n) networks.set(n, r);
      }
    }
    /** Network names each container is attached to. */
    const attachments = (r: PolicyResource): string[] => items(r.props, "networksAdvanced").flatMap((a) => nameOf(() => a.name) ?? []);
    const containers = args.resources.filter((r) => r.type === TYPES.container);
    const agents = containers.filter((r) => isAgentContainer(r.type, r.props));
    if (agents.length === 0) args.notApplicable("The stack declares no agent container.");

    for (const agent of agents) {
      const identity = identityOf(agent.props);
      for (const netName of attachments(agent)) {
        const net = networks.get(netName);
        if (!net) {
          report(`The agent container ${who(agent.name)} must be attached only to networks this stack declares, not to "${netName}".`, agent.urn);
          continue;
        }
        if (roleOf(net.props) !== "internal") report(`The agent container ${who(agent.name)} must be attached only to its bottle's internal network, not to ${who(net.name)} (role ${roleOf(net.props) ?? "none"}).`, agent.urn);
        for (const problem of networkIsolationProblems(net.name, net.props)) report(problem, net.urn);
        const netIdentity = identityOf(net.props);
        if (identity !== undefined && netIdentity !== undefined && identity !== netIdentity) {
          report(`The agent container ${who(agent.name)} must not share a network with another bottle (${who(net.name)}).`, agent.urn);
        }
        for (const other of containers) {
          if (other === agent || !attachments(other).includes(netName)) continue;
          if (roleOf(other.props) === "pipelock") report(`The network ${who(net.name)} holds the agent and must not also hold pipelock (the agent could bypass egress).`, net.urn);
          const otherIdentity = identityOf(other.props);
          if (identity !== undefined && otherIdentity !== identity) report(`The network ${who(net.name)} holds the agent and must hold only containers of the same bottle, not ${who(other.name)}.`, net.urn);
        }
      }
    }
    // Names computed from other resources are unknown at preview: say so (the engine reports it as
    // advisory "can't run during preview"); the policy runs in full at `pulumi up`.
    if (unknown) throw unknown;
  },
};

export const networkPolicies = [bottleNetworkIsolated, agentNetworksInternal];
