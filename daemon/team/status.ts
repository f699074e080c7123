/**
 * The team status report: what the team decided, how this agent and each teammate differ from it
 * (drift), the links, pulls under way, and how far the last decision has been applied.
 */
import { TeamEvent, TeamPeerInfo, TeamStatus } from '../../protocol';
import { TeamConfig } from './config';
import { TeamTransport } from './transport';
import { TeamState, eventId } from './state';

export interface StatusInputs {
  cfg: TeamConfig;
  state: TeamState;
  node: TeamTransport;
  /** "host:port" this agent accepts teammates on, or null. */
  listen: string | null;
  /** This agent's active layers. */
  active: string[];
  pulling: { layer: string; done: number; total: number }[];
  lastDecision: TeamEvent | null;
  /** This agent's digests of the team layers it has. */
  digests: Record<string, string>;
  /** Team layers held here (by `team hold`, or required by an active personal layer). */
  held: string[];
}

export function teamStatus(s: StatusInputs): TeamStatus {
  const { cfg, node } = s;
  const team = Object.keys(cfg.spec.layers);
  const desired = s.state.desiredActive(cfg.spec);
  // Content that differs from the team file's digest is drift too (~name): an edited team layer.
  const edited = (has: Record<string, string>): string[] =>
    team.filter((n) => has[n] !== undefined && has[n] !== cfg.spec.layers[n].digest).map((n) => `~${n}`);
  const driftOf = (active: string[], has: Record<string, string> = {}): string[] => {
    const a = active.filter((n) => team.includes(n));
    return [
      ...a.filter((n) => !desired.includes(n)).map((n) => `+${n}`),
      ...desired.filter((n) => !a.includes(n)).map((n) => `-${n}`),
      ...edited(has),
    ];
  };
  const connected = new Set(node.connectedAgents());
  const stale = 3 * node.limits.heartbeatMs;
  // Freshness by when we heard it, not by the time the sender claims.
  const fresh = (agent: string) => Date.now() - (node.heardAt(agent) ?? 0) < stale;
  const peers: TeamPeerInfo[] = [...node.presences.values()].map((p) => ({
    agent: p.agent,
    user: p.user,
    host: p.host,
    connection: connected.has(p.agent) ? 'connected' : fresh(p.agent) ? 'via-relay' : 'gone',
    active: p.active,
    held: p.held,
    busy: p.busy,
    drift: p.active ? driftOf(p.active, p.has) : [],
    lastSeen: p.at,
  }));
  const out: TeamStatus = {
    joined: true,
    team: cfg.spec.team,
    agent: cfg.agentId,
    user: cfg.name,
    relays: node
      .peers()
      .filter((p) => p.direction === 'out')
      .map((p) => ({ url: p.url ?? '', state: p.state })),
    listen: s.listen,
    teamFile: cfg.teamFile,
    teamLayers: team,
    desired,
    drift: driftOf(s.active, s.digests),
    contentDrift: team
      .filter((n) => s.digests[n] !== undefined && s.digests[n] !== cfg.spec.layers[n].digest)
      .map((n) => ({ layer: n, expected: cfg.spec.layers[n].digest, here: s.digests[n] })),
    held: s.held,
    peers,
    pulling: s.pulling,
  };
  if (s.lastDecision) {
    const ev = s.lastDecision;
    const agents = [...node.presences.values()].filter((p) => p.active !== null && fresh(p.agent));
    const applied = 1 + agents.filter((p) => (p.applied[ev.origin] ?? 0) >= ev.seq).length;
    out.lastDecision = { id: eventId(ev), applied, of: agents.length + 1, event: ev };
  }
  return out;
}
