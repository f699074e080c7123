/**
 * Names in NATS for a team: its buckets (one account per team, or a subject prefix per team in a
 * shared account: both work, see docs/nats.md) and the keys in them, and the client's server
 * list from the addresses a team file names.
 */
import * as crypto from 'crypto';
import { isNatsUrl } from '../../../protocol/nats';

/** Bucket names allow A-Z a-z 0-9 _ -; a team name may also hold "." and "+", so those teams get a hash suffix. */
export function bucketBase(team: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(team)) return `strata-${team}`;
  const safe = team.replace(/[^A-Za-z0-9_-]/g, '_');
  return `strata-${safe}-${crypto.createHash('sha256').update(team).digest('hex').slice(0, 8)}`;
}

export interface Buckets {
  /** Decisions: one key per register (KV). */
  decisions: string;
  /** Presence: one key per agent, expiring (KV with a max age). */
  presence: string;
  /** Layer archives by digest (Object Store). */
  layers: string;
}

export function bucketsOf(team: string): Buckets {
  const b = bucketBase(team);
  return { decisions: b, presence: `${b}-presence`, layers: `${b}-layers` };
}

/** A register key ("layer:NAME", "slot:NAME") as a KV key: "layer.NAME" with bytes KV keys refuse as =HH. */
export function kvKey(register: string): string {
  const i = register.indexOf(':');
  const kind = register.slice(0, i);
  const name = register.slice(i + 1).replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `${kind}.${name}`;
}

/** The register a KV key stands for (the inverse of kvKey), or null for a key Strata does not write. */
export function registerOf(key: string): string | null {
  const m = /^(layer|slot)\.([A-Za-z0-9_=-]+)$/.exec(key);
  if (!m) return null;
  return `${m[1]}:${m[2].replace(/=([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))}`;
}

/** An agent's presence key: ids are A-Z 2-7 and "-", valid in a key as they are. */
export const presenceKey = (agent: string): string => `agent.${agent}`;

export interface Servers {
  /** For the client: nats://host:port, or ws(s)://host:port/path for a WebSocket listener. */
  servers: string[];
  websocket: boolean;
  tls: boolean;
}

/**
 * The client's servers from a team's NATS addresses: tls:// asks for TLS on the NATS port,
 * nats+ws:// and nats+wss:// name a NATS WebSocket listener. One kind per team (all TCP or all
 * WebSocket): the client dials one kind.
 */
export function serversOf(urls: string[]): Servers {
  const ws = urls.filter((u) => /^nats\+wss?:/.test(u));
  if (ws.length && ws.length !== urls.length) {
    throw new Error(`the team names NATS servers over TCP and over WebSocket (${urls.join(', ')}): name one kind`);
  }
  if (ws.length)
    return { servers: ws.map((u) => u.replace(/^nats\+/, '')), websocket: true, tls: ws.some((u) => u.startsWith('nats+wss:')) };
  return {
    servers: urls.map((u) => u.replace(/^tls:/, 'nats:').replace(/\/$/, '')),
    websocket: false,
    tls: urls.some((u) => u.startsWith('tls:')),
  };
}

/**
 * The servers an agent dials: those it joined through, then the team file's other NATS servers of
 * the same kind (TCP or WebSocket), so a restart while the join server is down reaches another.
 */
export function seedsOf(joined: string[], teamFile: string[]): string[] {
  const ws = (u: string) => /^nats\+wss?:/.test(u);
  const kind = joined.some(ws);
  return [...new Set([...joined, ...teamFile.filter((u) => isNatsUrl(u) && ws(u) === kind)])];
}
