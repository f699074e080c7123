/**
 * What a node accepts from the network: connections and frames (links.ts), and what a frame may
 * claim (clock skew, how many senders and registers are remembered, layer sizes). Each has a
 * default; the agent and the relay read overrides from the environment (STRATA_TEAM_*).
 */

export interface NodeLimits {
  /** Authenticated and pending connections, together. */
  maxPeers: number;
  /** Connections that have not finished the handshake. */
  maxPending: number;
  /** Of those, from one address (an IPv4 address, an IPv6 /64). */
  maxPendingPerAddress: number;
  authTimeoutMs: number;
  /** The handshake deadline while more than half the pending slots are taken. */
  busyAuthTimeoutMs: number;
  heartbeatMs: number;
  /** Frames per second per accepted connection, and the burst above it (20 times both on a link this node dialed). */
  rate: number;
  burst: number;
  /** A peer whose unsent backlog passes this is dropped as a slow consumer. */
  maxBufferedBytes: number;
  /** A frame whose clock (event tag, presence time) is further ahead of ours is refused. */
  maxSkewMs: number;
  /** Senders remembered (seen sets, presences); the least recently active are forgotten first. */
  maxOrigins: number;
  /** Registers the replicated state holds; an event creating more is refused. */
  maxRegisters: number;
  /** The largest layer archive a pull accepts (what a peer declares, and what it sends). */
  maxLayerBytes: number;
}

export const DEFAULT_LIMITS: NodeLimits = {
  maxPeers: 1024,
  maxPending: 64,
  maxPendingPerAddress: 16,
  authTimeoutMs: 5000,
  busyAuthTimeoutMs: 1000,
  heartbeatMs: 10000,
  rate: 500,
  burst: 2000,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxSkewMs: 5 * 60 * 1000,
  maxOrigins: 1024,
  maxRegisters: 4096,
  maxLayerBytes: 4 * 1024 * 1024 * 1024,
};

const ENV: Record<string, keyof NodeLimits> = {
  STRATA_TEAM_HEARTBEAT_MS: 'heartbeatMs',
  STRATA_TEAM_MAX_SKEW_MS: 'maxSkewMs',
  STRATA_TEAM_MAX_ORIGINS: 'maxOrigins',
  STRATA_TEAM_MAX_REGISTERS: 'maxRegisters',
  STRATA_TEAM_MAX_LAYER_BYTES: 'maxLayerBytes',
  STRATA_TEAM_MAX_PENDING: 'maxPending',
  STRATA_TEAM_MAX_PENDING_PER_ADDRESS: 'maxPendingPerAddress',
};

/** Overrides from STRATA_TEAM_* variables; a value that is not a positive integer is ignored (and reported). */
export function limitsFromEnv(env: NodeJS.ProcessEnv, log?: (m: string) => void): Partial<NodeLimits> {
  const out: Partial<NodeLimits> = {};
  for (const [name, field] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (Number.isSafeInteger(n) && n > 0) out[field] = n;
    else log?.(`[team] ignoring ${name}=${raw}: not a positive integer`);
  }
  return out;
}
