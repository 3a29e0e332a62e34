// Subnets a program hands its bottles from a pool of its own, so a Docker host holds as many
// bottles as its memory allows: Docker's default address pools give out about 31 networks, ~10
// bottles of three networks each (bench/RESULTS.md, "bottle"). Each bottle gets three
// consecutive blocks of the pool (internal, link, outside), the same on every run for the same
// slot, so networks are never replaced by a change elsewhere in the program.
import * as pulumi from "@pulumi/pulumi";

/** The bottle's three networks' subnets (CIDRs). */
export interface BottleSubnets {
  internal: string;
  link: string;
  outside: string;
}

export interface SubnetPoolArgs {
  /** The block the pool hands out, e.g. "10.200.0.0/16": one that no network of any of the program's Docker hosts (nor Docker's own pools, 172.17.0.0/12 and 192.168.0.0/16 by default) overlaps. */
  cidr: string;
  /** Prefix length of each network. Default 26 (62 addresses: a bottle network holds 2–5 containers); 24 for round numbers. */
  networkPrefix?: number;
}

const ip = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");

/** "a.b.c.d/n" → its first address and prefix length; refuses what Docker would, and host bits. */
export function parseCidr(cidr: string, what = "subnet"): { base: number; prefix: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr.trim());
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const prefix = m ? Number(m[5]) : NaN;
  if (!m || octets.some((o, i) => o > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith("0"))) || prefix > 32) throw new pulumi.RunError(`${what} ${JSON.stringify(cidr)}: expected an IPv4 CIDR such as 10.200.0.0/16`);
  const base = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) throw new pulumi.RunError(`${what} ${cidr}: host bits are set (did you mean ${ip(base - (base % size))}/${prefix}?)`);
  return { base, prefix };
}

export class SubnetPool {
  readonly cidr: string;
  readonly networkPrefix: number;
  /** How many bottles the pool holds. */
  readonly capacity: number;
  private readonly base: number;
  private readonly taken = new Map<number, string>();

  constructor(args: SubnetPoolArgs) {
    const { base, prefix } = parseCidr(args.cidr, "SubnetPool cidr");
    const networkPrefix = args.networkPrefix ?? 26;
    if (!Number.isInteger(networkPrefix) || networkPrefix < prefix || networkPrefix > 29) {
      throw new pulumi.RunError(`SubnetPool networkPrefix ${networkPrefix}: expected a whole number between the pool's /${prefix} and 29 (a /29 holds 5 containers)`);
    }
    this.cidr = args.cidr;
    this.networkPrefix = networkPrefix;
    this.base = base;
    this.capacity = Math.floor(2 ** (networkPrefix - prefix) / 3);
    if (this.capacity < 1) throw new pulumi.RunError(`SubnetPool ${args.cidr}: too small for one bottle's three /${networkPrefix} networks`);
  }

  /** The subnets of slot `index` (0-based): blocks 3·index … 3·index+2 of the pool. */
  at(index: number): BottleSubnets {
    if (!Number.isInteger(index) || index < 0 || index >= this.capacity) throw new pulumi.RunError(`SubnetPool ${this.cidr}: slot ${index} is outside 0…${this.capacity - 1} (${this.capacity} bottles of three /${this.networkPrefix} networks)`);
    const size = 2 ** (32 - this.networkPrefix);
    const block = (k: number) => `${ip(this.base + (3 * index + k) * size)}/${this.networkPrefix}`;
    return { internal: block(0), link: block(1), outside: block(2) };
  }

  /**
   * The slot a name hashes to: adding or removing other bottles never moves it. Two names on one
   * slot are refused (give one an explicit slot with `at`, or use a larger pool).
   */
  forName(name: string): BottleSubnets {
    let h = 2166136261;
    for (const c of Buffer.from(name)) h = Math.imul(h ^ c, 16777619) >>> 0;
    const slot = h % this.capacity;
    const other = this.taken.get(slot);
    if (other !== undefined && other !== name) throw new pulumi.RunError(`SubnetPool ${this.cidr}: bottles ${JSON.stringify(other)} and ${JSON.stringify(name)} hash to the same slot ${slot}; give one an explicit slot with pool.at(n), or use a larger pool`);
    this.taken.set(slot, name);
    return this.at(slot);
  }
}
