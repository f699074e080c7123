/**
 * The team protocol: frames between agents (and standalone relays) over WebSocket, and the team
 * file committed in a repository. Every frame is declared once here, as a schema its type is derived
 * from, and checked by `checkFrame` before use. Frames are JSON text messages.
 */
import * as v from 'valibot';
import { LAYER_NAME_PATTERN, layerName } from './layer';
import { Message, bool, count, exact, int, issueMessage, list, obj, pathTo, rec, str, tagged, text, utf8Length, whole } from './schema';

/** 2: agents have key pairs; events, presence and chunks are signed; snapshots became `synced`. */
export const TEAM_PROTOCOL_VERSION = 2;
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

// ---- names and ids ------------------------------------------------------------------------------

/**
 * Agent ids: 1-64 of A-Z a-z 0-9 . _ : -. An agent's id is its key's fingerprint (daemon/team/identity.ts:
 * 32 base32 characters in groups of 8); the schema stays wide so an old team.json still parses.
 */
export const AGENT_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
export function agentId(message: Message = 'must be an agent id (1-64 of A-Z a-z 0-9 . _ : -)') {
  return v.pipe(v.string(message), v.regex(AGENT_ID_RE, message));
}
export const isAgentId = (x: unknown): x is string => v.is(agentId(), x);

const name = layerName();
const names = (max = 256) => list(name, max);
const hex64 = v.pipe(v.string('must be 64 hex digits'), v.regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits'));
/** An Ed25519 public key: 32 bytes, base64url without padding. */
export const publicKey = () =>
  v.pipe(v.string('must be a public key'), v.regex(/^[A-Za-z0-9_-]{43}$/, 'must be a public key (43 base64url)'));
/** An Ed25519 signature: 64 bytes, base64url without padding. */
export const signature = () =>
  v.pipe(v.string('must be a signature'), v.regex(/^[A-Za-z0-9_-]{86}$/, 'must be a signature (86 base64url)'));

/**
 * Upper bounds no honest frame comes near, so arithmetic on what a peer claims stays exact: an
 * event seq (a decision count), an HLC wall (ms; Date's range ends at 8.64e15) and logical counter.
 */
export const MAX_SEQ = 2 ** 40;
export const MAX_WALL = 2 ** 47;
export const MAX_LOGICAL = 2 ** 32;

// ---- the team file ----------------------------------------------------------------------------

export const TEAM_FILE = 'strata.team.json';
/** A layer's content digest, as team files name it (and the NATS Object Store names its archive). */
export const LAYER_DIGEST = /^sha256:[0-9a-f]{64}$/;

export const TEAM_FILE_FORMAT = 1;

// The file is read by people: each field gets one message saying what it must hold.
const teamFileFields = obj(
  {
    format: v.literal(TEAM_FILE_FORMAT, (i) => `must be ${TEAM_FILE_FORMAT}, got ${JSON.stringify(i.input)}`),
    /** Team id: agents refuse peers of another team. */
    team: layerName('must be a name (letters, digits, . _ + -)'),
    /** ws:// or wss:// addresses of relays (or agents that listen), or NATS servers (protocol/nats.ts). */
    relays: whole(
      v.array(v.pipe(v.string(), v.regex(/^(?:wss?|nats|tls|nats\+wss?):\/\/[^\s]+$/))),
      'must be a list of ws://, wss:// (Strata relays) or nats://, tls://, nats+ws://, nats+wss:// (NATS) addresses',
    ),
    /** Team layers and their content digests ("sha256:<hex>"). Only these are relayed. */
    layers: v.nullish(
      whole(
        rec(name, obj({ digest: v.pipe(v.string(), v.regex(LAYER_DIGEST)), version: v.optional(v.string()) })),
        'must map layer names to {"digest": "sha256:<64 hex>"}',
      ),
      {},
    ),
    /** The team's default active set. */
    defaults: v.nullish(whole(names(), 'must be a list of layer names'), []),
    /** Swap slots: layers of one slot are mutually exclusive; a swap between them is one decision. */
    slots: v.nullish(whole(rec(name, names()), 'must map slot names to lists of layer names'), {}),
    /** NATS: the JetStream domain that holds the team's buckets, for agents that dial a leaf node
     *  of that hub (docs/nats/leaf.conf); absent: the JetStream of the server dialled. */
    jetstreamDomain: v.optional(
      whole(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,64}$/)), 'must be a JetStream domain name (letters, digits, _ and -)'),
    ),
  },
  'must be a JSON object',
);

/** Every name the file uses is a team layer; a layer is in one slot at most; one default per slot. */
const teamFileRefs = v.rawCheck<v.InferOutput<typeof teamFileFields>>(({ dataset, addIssue }) => {
  if (!dataset.typed) return;
  const t = dataset.value;
  const isLayer = (n: string) => Object.prototype.hasOwnProperty.call(t.layers, n);
  for (const n of t.defaults) if (!isLayer(n)) addIssue({ message: `"${n}" is not a team layer`, path: pathTo(t, 'defaults') });
  for (const [s, ls] of Object.entries(t.slots)) {
    for (const n of ls) if (!isLayer(n)) addIssue({ message: `"${n}" is not a team layer`, path: pathTo(t, 'slots', s) });
  }
  const owner = new Map<string, string>();
  for (const s of Object.keys(t.slots).sort()) {
    for (const n of t.slots[s]) {
      const o = owner.get(n);
      if (o !== undefined && o !== s)
        addIssue({ message: `"${n}" is already in slot ${o}; a layer belongs to one slot at most`, path: pathTo(t, 'slots', s) });
      else owner.set(n, s);
    }
    const defaults = t.slots[s].filter((n, i, all) => t.defaults.includes(n) && all.indexOf(n) === i);
    if (defaults.length > 1) {
      addIssue({
        message: `${defaults.map((n) => `"${n}"`).join(' and ')} are all in slot ${s}; only one can be active`,
        path: pathTo(t, 'defaults'),
      });
    }
  }
});

export const TeamFileSchema = v.pipe(teamFileFields, teamFileRefs);
export type TeamFile = v.InferOutput<typeof TeamFileSchema>;

/** Check a parsed team file; returns the problems, each naming the file and the field. */
export function checkTeamFile(raw: unknown, file: string): { team?: TeamFile; problems: string[] } {
  const r = v.safeParse(TeamFileSchema, raw);
  return r.success ? { team: r.output, problems: [] } : { problems: r.issues.map((i) => issueMessage(i, file)) };
}

// ---- replicated state ---------------------------------------------------------------------------

/** A hybrid logical clock timestamp; `agent` breaks ties. */
export const HlcSchema = obj(
  { wall: int(0, MAX_WALL), logical: int(0, MAX_LOGICAL), agent: agentId() },
  'must be an HLC timestamp {wall, logical, agent}',
);
export type Hlc = v.InferOutput<typeof HlcSchema>;
export const isHlc = (x: unknown): x is Hlc => v.is(HlcSchema, x);

/** Register keys: "layer:NAME" holds {active}, "slot:NAME" holds {layer} (null: none). */
const REGISTER_KEY_RE = new RegExp(`^(?:layer|slot):${LAYER_NAME_PATTERN}$`);
const registerKey = (what: string) => {
  const m = (i: v.BaseIssue<unknown>) => `${what} ${JSON.stringify(i.input).slice(0, 80)} (expected "layer:NAME" or "slot:NAME")`;
  return v.pipe(v.string(m), v.regex(REGISTER_KEY_RE, m));
};
export const RegisterValueSchema = v.union(
  [exact({ active: bool() }), exact({ layer: v.nullable(name) })],
  'must be {"active": boolean} or {"layer": name | null}',
);
export type RegisterValue = v.InferOutput<typeof RegisterValueSchema>;

/** A "layer:" register holds {active}; a "slot:" register holds {layer}. */
const fitsKey = (key: string, value: RegisterValue): boolean => key.startsWith('layer:') === 'active' in value;
const expectedFor = (key: string) => (key.startsWith('layer:') ? '{"active": boolean}' : '{"layer": name | null}');

export const RegisterWriteSchema = v.pipe(
  obj({ key: registerKey('bad register key'), value: RegisterValueSchema }),
  v.check(
    (w) => fitsKey(w.key, w.value),
    (i) => {
      const w = i.input as { key: string; value: unknown };
      return `bad value for ${w.key}: ${JSON.stringify(w.value)} (expected ${expectedFor(w.key)})`;
    },
  ),
);
export type RegisterWrite = v.InferOutput<typeof RegisterWriteSchema>;

export const TaggedRegisterSchema = obj({ value: RegisterValueSchema, tag: HlcSchema });
export type TaggedRegister = v.InferOutput<typeof TaggedRegisterSchema>;

/** Registers by key, each value fitting its key. */
export const RegistersSchema = v.pipe(
  rec(registerKey('bad key'), TaggedRegisterSchema),
  v.rawCheck<Record<string, TaggedRegister>>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    for (const [k, r] of Object.entries(dataset.value)) {
      if (!fitsKey(k, r.value)) addIssue({ message: `must hold ${expectedFor(k)}`, path: pathTo(dataset.value, k, 'value') });
    }
  }),
);

/** Origins a seen vector may list (a node remembers at most its maxOrigins, fewer by default). */
export const MAX_ORIGINS = 10_000;
/**
 * Origins a node lists in the seen vectors it sends (have, synced, presence): the most recently
 * active. 1024 key-derived ids take about 48 KiB, within MAX_FRAME whatever maxOrigins is set to;
 * an origin left out is only sent again what the peer has (and does not count its acknowledgement).
 */
export const WIRE_ORIGINS = 1024;

/** Highest event seq seen (or applied), per origin. */
export const SeenSchema = v.pipe(
  rec(
    agentId((i) => `bad origin ${JSON.stringify(i.input).slice(0, 80)}`),
    int(0, MAX_SEQ),
  ),
  v.maxEntries(MAX_ORIGINS, `must have at most ${MAX_ORIGINS} origins`),
);

const writes = v.pipe(
  v.array(RegisterWriteSchema, 'must be a list'),
  v.maxLength(64, (i) => `at most 64 writes per event, got ${i.input.length}`),
);
/** An event's writes: one to 64. */
export const EventWritesSchema = v.pipe(writes, v.minLength(1, 'an event needs at least one write'));

/**
 * One decision by one agent: writes applied together, never half-way. Signed by its origin (`sig`
 * over everything else, see identity.ts); `key` is the origin's public key, whose fingerprint the
 * origin id must be, so any node can check an event it relays or replays from history.
 */
export const TeamEventSchema = obj({
  origin: agentId(),
  seq: int(1, MAX_SEQ, `must be an integer from 1 to ${MAX_SEQ}`),
  tag: HlcSchema,
  writes: EventWritesSchema,
  user: text(64),
  host: text(128),
  /** What the registers held before, as the origin saw them (for revert). */
  prev: writes,
  /** Set when this event reverts another (its eventId). */
  reverts: v.optional(text(140)),
  key: publicKey(),
  sig: signature(),
});
export type TeamEvent = v.InferOutput<typeof TeamEventSchema>;
export const isTeamEvent = (x: unknown): x is TeamEvent => v.is(TeamEventSchema, x);

/** The id of an event: "origin:seq". */
export function eventId(ev: { origin: string; seq: number }): string {
  return `${ev.origin}:${ev.seq}`;
}

/** What an agent runs and holds, sent on change and with every heartbeat; signed by that agent. */
export const PresenceSchema = obj({
  agent: agentId(),
  /** Newer presence has a higher pseq (the sender's clock in ms; bounded like a wall). */
  pseq: int(0, MAX_WALL),
  user: text(64),
  host: text(128),
  /** null for a standalone relay. */
  active: v.nullable(names()),
  /** Team layers this agent keeps as it wants (does not follow the team). */
  held: names(),
  /** Highest event seq applied, per origin. */
  applied: SeenSchema,
  /** Team layers with files open in this agent's views. */
  busy: names(),
  /** Team layers this agent has, with their digests (peers pull from it). */
  has: rec(name, text(80)),
  at: int(0, MAX_WALL),
  key: publicKey(),
  sig: signature(),
});
export type Presence = v.InferOutput<typeof PresenceSchema>;

/**
 * What one replica gives another to converge: the signed events that hold its registers (and the
 * recent history), then its contiguous seen vector. On the wire the events travel one frame each
 * and the vector as `synced`; this is the same exchange as one value, for the state and its tests.
 */
export const TeamSnapshotSchema = obj({ events: v.array(TeamEventSchema), seen: SeenSchema });
export type TeamSnapshot = v.InferOutput<typeof TeamSnapshotSchema>;

/** JSON with object keys sorted at every level and undefined fields left out: what signatures cover. */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

// ---- frames -------------------------------------------------------------------------------------

const FRAMES = {
  // Each side proves the team secret (proof, an HMAC) and its own key (sig over the same fields).
  hello: tagged({ t: v.literal('hello'), v: count(), team: name, agent: agentId(), nonce: hex64, key: publicKey() }),
  challenge: tagged({
    t: v.literal('challenge'),
    v: count(),
    team: name,
    agent: agentId(),
    nonce: hex64,
    proof: hex64,
    key: publicKey(),
    sig: signature(),
  }),
  auth: tagged({ t: v.literal('auth'), proof: hex64, sig: signature() }),
  welcome: tagged({ t: v.literal('welcome') }),
  /**
   * After welcome: what this side has seen. The other answers with the events it lacks and those
   * holding its registers (one `event` frame each), then `synced` with its own seen vector.
   */
  have: tagged({ t: v.literal('have'), seen: SeenSchema }),
  synced: tagged({ t: v.literal('synced'), seen: SeenSchema }),
  event: tagged({ t: v.literal('event'), event: TeamEventSchema }),
  presence: tagged({ t: v.literal('presence'), presence: PresenceSchema }),
  // Pulls are routed hop by hop toward `to` (the next hop is the link a peer's presence came in on).
  pull: tagged({ t: v.literal('pull'), to: agentId(), from: agentId(), layer: name, digest: text(80), offset: count() }),
  chunk: tagged({
    t: v.literal('chunk'),
    to: agentId(),
    from: agentId(),
    layer: name,
    digest: text(80),
    offset: count(),
    total: count(),
    sha256: hex64,
    data: text(MAX_FRAME),
    /** By `from`, over every other field (the data through sha256), so a pull is attributable. */
    sig: signature(),
  }),
  'pull-error': tagged({ t: v.literal('pull-error'), to: agentId(), from: agentId(), layer: name, message: text(1024) }),
  error: tagged({ t: v.literal('error'), code: text(64), message: text(1024) }),
};
type FrameSchemas = typeof FRAMES;
export type Frame = { [T in keyof FrameSchemas]: v.InferOutput<FrameSchemas[T]> }[keyof FrameSchemas];

export type FrameCheck = { ok: true; frame: Frame } | { ok: false; close: number; message: string };

const frameHead = obj({ t: str() });

/** Validate one incoming text frame. Never throws. */
export function checkFrame(text: string): FrameCheck {
  const bad = (message: string): FrameCheck => ({ ok: false, close: CloseCodes.BAD_FRAME, message: message.slice(0, 200) });
  if (utf8Length(text) > MAX_FRAME) return bad(`frame larger than ${MAX_FRAME} bytes`);
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return bad('frame is not JSON');
  }
  if (!v.is(frameHead, m)) return bad('frame is not an object with a type');
  if (!Object.prototype.hasOwnProperty.call(FRAMES, m.t)) {
    return { ok: false, close: CloseCodes.UNKNOWN_FRAME, message: `unknown frame type ${JSON.stringify(m.t).slice(0, 40)}` };
  }
  const r = v.safeParse(FRAMES[m.t as keyof FrameSchemas] as v.GenericSchema<unknown, Frame>, m);
  return r.success ? { ok: true, frame: r.output } : bad(`malformed ${m.t}: ${issueMessage(r.issues[0], '')}`);
}
