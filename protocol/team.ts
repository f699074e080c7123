/**
 * The team protocol: frames between agents (and standalone relays) over WebSocket, and the team
 * file committed in a repository. Every frame is declared once here and checked by `checkFrame`
 * before use. Frames are JSON text messages.
 */
import { utf8Length } from './control';

export const TEAM_PROTOCOL_VERSION = 1;
/** Largest frame accepted (ws maxPayload). Layer content travels in chunks well below this. */
export const MAX_FRAME = 64 * 1024;
/** Raw bytes of layer content per chunk (base64 in the frame). */
export const CHUNK_BYTES = 32 * 1024;

/** Custom WebSocket close codes (4000-4999 are for applications). */
export const CloseCodes = {
  AUTH_FAILED: 4001,
  BAD_FRAME: 4002,
  UNKNOWN_FRAME: 4003,
  VERSION: 4004,
  WRONG_TEAM: 4005,
  AUTH_TIMEOUT: 4006,
  RATE_LIMITED: 4008,
  SLOW_CONSUMER: 4010,
  DUPLICATE_AGENT: 4011,
  SHUTTING_DOWN: 4012,
} as const;

// ---- the team file ----------------------------------------------------------------------------

export const TEAM_FILE = 'strata.team.json';
export const TEAM_FILE_FORMAT = 1;

export interface TeamFile {
  format: typeof TEAM_FILE_FORMAT;
  /** Team id: agents refuse peers of another team. */
  team: string;
  /** ws:// or wss:// addresses of relays (or agents that listen). */
  relays: string[];
  /** Team layers and their content digests ("sha256:<hex>"). Only these are relayed. */
  layers: Record<string, { digest: string; version?: string }>;
  /** The team's default active set. */
  defaults: string[];
  /** Swap slots: layers of one slot are mutually exclusive; a swap between them is one decision. */
  slots: Record<string, string[]>;
}

// ---- replicated state ---------------------------------------------------------------------------

/** A hybrid logical clock timestamp; `agent` breaks ties. */
export interface Hlc {
  wall: number;
  logical: number;
  agent: string;
}

/** Register keys: "layer:NAME" holds {active}, "slot:NAME" holds {layer} (null: none). */
export type RegisterValue = { active: boolean } | { layer: string | null };

export interface RegisterWrite {
  key: string;
  value: RegisterValue;
}

export interface TaggedRegister {
  value: RegisterValue;
  tag: Hlc;
}

/** One decision by one agent: writes applied together, never half-way. */
export interface TeamEvent {
  origin: string;
  seq: number;
  tag: Hlc;
  writes: RegisterWrite[];
  user: string;
  host: string;
  /** What the registers held before, as the origin saw them (for revert). */
  prev: RegisterWrite[];
  /** Set when this event reverts another ("origin:seq"). */
  reverts?: string;
}

/** What an agent runs and holds, sent on change and with every heartbeat. */
export interface Presence {
  agent: string;
  pseq: number;
  user: string;
  host: string;
  /** null for a standalone relay. */
  active: string[] | null;
  /** Team layers this agent keeps as it wants (does not follow the team). */
  held: string[];
  /** Highest event seq applied, per origin. */
  applied: Record<string, number>;
  /** Team layers with files open in this agent's views. */
  busy: string[];
  /** Team layers this agent has, with their digests (peers pull from it). */
  has: Record<string, string>;
  at: number;
}

// ---- frames -------------------------------------------------------------------------------------

export type Frame =
  | { t: 'hello'; v: number; team: string; agent: string; nonce: string }
  | { t: 'challenge'; v: number; team: string; agent: string; nonce: string; proof: string }
  | { t: 'auth'; proof: string }
  | { t: 'welcome' }
  /** After welcome: what this side has seen, so the other sends the events it lacks, then its snapshot. */
  | { t: 'have'; seen: Record<string, number> }
  | { t: 'snapshot'; registers: Record<string, TaggedRegister>; seen: Record<string, number>; events: TeamEvent[] }
  | { t: 'event'; event: TeamEvent }
  | { t: 'presence'; presence: Presence }
  // Pulls are routed hop by hop toward `to` (the next hop is the link a peer's presence came in on).
  | { t: 'pull'; to: string; from: string; layer: string; digest: string; offset: number }
  | { t: 'chunk'; to: string; from: string; layer: string; digest: string; offset: number; total: number; sha256: string; data: string }
  | { t: 'pull-error'; to: string; from: string; layer: string; message: string }
  | { t: 'error'; code: string; message: string };

export type FrameType = Frame['t'];

// ---- checks -------------------------------------------------------------------------------------

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length <= max;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHex = (v: unknown, len: number): v is string => typeof v === 'string' && v.length === len && /^[0-9a-f]+$/.test(v);
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const isName = (v: unknown): v is string => typeof v === 'string' && NAME.test(v);
const isId = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(v);

export function isHlc(v: unknown): v is Hlc {
  return isObj(v) && isInt(v.wall) && isInt(v.logical) && isId(v.agent);
}

export function isRegisterKey(k: unknown): k is string {
  if (typeof k !== 'string') return false;
  const i = k.indexOf(':');
  return (k.slice(0, i) === 'layer' || k.slice(0, i) === 'slot') && isName(k.slice(i + 1));
}

export function isRegisterValue(key: string, v: unknown): v is RegisterValue {
  if (!isObj(v)) return false;
  if (key.startsWith('layer:')) return Object.keys(v).length === 1 && typeof v.active === 'boolean';
  return Object.keys(v).length === 1 && (v.layer === null || isName(v.layer));
}

function isWrites(v: unknown, max = 64): v is RegisterWrite[] {
  return Array.isArray(v) && v.length <= max && v.every((w) => isObj(w) && isRegisterKey(w.key) && isRegisterValue(w.key as string, w.value));
}

export function isTeamEvent(v: unknown): v is TeamEvent {
  return (
    isObj(v) && isId(v.origin) && isInt(v.seq) && v.seq > 0 && isHlc(v.tag) && isWrites(v.writes) && (v.writes as unknown[]).length > 0 &&
    isStr(v.user, 64) && isStr(v.host, 128) && isWrites(v.prev) && (v.reverts === undefined || isStr(v.reverts, 140))
  );
}

function isNameList(v: unknown, max = 256): v is string[] {
  return Array.isArray(v) && v.length <= max && v.every(isName);
}

function isSeen(v: unknown): v is Record<string, number> {
  return isObj(v) && Object.keys(v).length <= 10_000 && Object.entries(v).every(([k, n]) => isId(k) && isInt(n));
}

export function isPresence(v: unknown): v is Presence {
  return (
    isObj(v) && isId(v.agent) && isInt(v.pseq) && isStr(v.user, 64) && isStr(v.host, 128) &&
    (v.active === null || isNameList(v.active)) && isNameList(v.held) && isSeen(v.applied) && isNameList(v.busy) &&
    isObj(v.has) && Object.entries(v.has).every(([k, d]) => isName(k) && isStr(d, 80)) && isInt(v.at)
  );
}

export type FrameCheck = { ok: true; frame: Frame } | { ok: false; close: number; message: string };

/** Validate one incoming text frame. Never throws. */
export function checkFrame(text: string): FrameCheck {
  const bad = (message: string): FrameCheck => ({ ok: false, close: CloseCodes.BAD_FRAME, message });
  if (utf8Length(text) > MAX_FRAME) return bad(`frame larger than ${MAX_FRAME} bytes`);
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return bad('frame is not JSON');
  }
  if (!isObj(m) || typeof m.t !== 'string') return bad('frame is not an object with a type');
  const f = m;
  switch (f.t) {
    case 'hello':
      return isInt(f.v) && isName(f.team) && isId(f.agent) && isHex(f.nonce, 64) ? { ok: true, frame: f as Frame } : bad('malformed hello');
    case 'challenge':
      return isInt(f.v) && isName(f.team) && isId(f.agent) && isHex(f.nonce, 64) && isHex(f.proof, 64) ? { ok: true, frame: f as Frame } : bad('malformed challenge');
    case 'auth':
      return isHex(f.proof, 64) ? { ok: true, frame: f as Frame } : bad('malformed auth');
    case 'welcome':
      return { ok: true, frame: { t: 'welcome' } };
    case 'have':
      return isSeen(f.seen) ? { ok: true, frame: f as Frame } : bad('malformed have');
    case 'snapshot': {
      if (!isObj(f.registers) || !isSeen(f.seen) || !Array.isArray(f.events) || f.events.length > 1000) return bad('malformed snapshot');
      for (const [k, r] of Object.entries(f.registers)) {
        if (!isRegisterKey(k) || !isObj(r) || !isHlc(r.tag) || !isRegisterValue(k, r.value)) return bad(`malformed register ${k.slice(0, 80)}`);
      }
      if (!f.events.every(isTeamEvent)) return bad('malformed event in snapshot');
      return { ok: true, frame: f as Frame };
    }
    case 'event':
      return isTeamEvent(f.event) ? { ok: true, frame: f as Frame } : bad('malformed event');
    case 'presence':
      return isPresence(f.presence) ? { ok: true, frame: f as Frame } : bad('malformed presence');
    case 'pull':
      return isId(f.to) && isId(f.from) && isName(f.layer) && isStr(f.digest, 80) && isInt(f.offset) ? { ok: true, frame: f as Frame } : bad('malformed pull');
    case 'chunk':
      return isId(f.to) && isId(f.from) && isName(f.layer) && isStr(f.digest, 80) && isInt(f.offset) && isInt(f.total) && isHex(f.sha256, 64) && isStr(f.data, MAX_FRAME)
        ? { ok: true, frame: f as Frame }
        : bad('malformed chunk');
    case 'pull-error':
      return isId(f.to) && isId(f.from) && isName(f.layer) && isStr(f.message, 1024) ? { ok: true, frame: f as Frame } : bad('malformed pull-error');
    case 'error':
      return isStr(f.code, 64) && isStr(f.message, 1024) ? { ok: true, frame: f as Frame } : bad('malformed error');
    default:
      return { ok: false, close: CloseCodes.UNKNOWN_FRAME, message: `unknown frame type ${JSON.stringify(f.t).slice(0, 40)}` };
  }
}

/** Validate a parsed team file; returns the problems, naming the field. */
export function checkTeamFile(v: unknown, file: string): { team?: TeamFile; problems: string[] } {
  const problems: string[] = [];
  if (!isObj(v)) return { problems: [`${file}: must be a JSON object`] };
  if (v.format !== TEAM_FILE_FORMAT) problems.push(`${file}: format: must be ${TEAM_FILE_FORMAT}, got ${JSON.stringify(v.format)}`);
  if (!isName(v.team)) problems.push(`${file}: team: must be a name (letters, digits, . _ + -)`);
  if (!Array.isArray(v.relays) || !v.relays.every((r) => typeof r === 'string' && /^wss?:\/\/[^\s]+$/.test(r))) {
    problems.push(`${file}: relays: must be a list of ws:// or wss:// addresses`);
  }
  const layers = v.layers ?? {};
  if (!isObj(layers) || !Object.entries(layers).every(([k, l]) => isName(k) && isObj(l) && typeof l.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(l.digest))) {
    problems.push(`${file}: layers: must map layer names to {"digest": "sha256:<64 hex>"}`);
  }
  const defaults = v.defaults ?? [];
  if (!isNameList(defaults)) problems.push(`${file}: defaults: must be a list of layer names`);
  const slots = v.slots ?? {};
  if (!isObj(slots) || !Object.entries(slots).every(([k, l]) => isName(k) && isNameList(l))) problems.push(`${file}: slots: must map slot names to lists of layer names`);
  if (problems.length) return { problems };
  const team: TeamFile = {
    format: TEAM_FILE_FORMAT, team: v.team as string, relays: v.relays as string[],
    layers: layers as TeamFile['layers'], defaults: defaults as string[], slots: slots as Record<string, string[]>,
  };
  for (const n of team.defaults) if (!team.layers[n]) problems.push(`${file}: defaults: "${n}" is not a team layer`);
  for (const [s, ls] of Object.entries(team.slots)) for (const n of ls) if (!team.layers[n]) problems.push(`${file}: slots.${s}: "${n}" is not a team layer`);
  return problems.length ? { problems } : { team, problems };
}
