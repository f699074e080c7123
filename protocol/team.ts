/**
 * The team protocol: frames between agents (and standalone relays) over WebSocket, and the team
 * file committed in a repository. Every frame is declared once here, as a schema its type is derived
 * from, and checked by `checkFrame` before use. Frames are JSON text messages.
 */
import * as v from 'valibot';
import { LAYER_NAME_PATTERN, layerName } from './layer';
import { Message, bool, count, exact, int, issueMessage, list, obj, pathTo, rec, str, tagged, text, utf8Length, whole } from './schema';

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

// ---- names and ids ------------------------------------------------------------------------------

/** Agent ids: 1-64 of A-Z a-z 0-9 . _ : - */
export const AGENT_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
export function agentId(message: Message = 'must be an agent id (1-64 of A-Z a-z 0-9 . _ : -)') {
  return v.pipe(v.string(message), v.regex(AGENT_ID_RE, message));
}
export const isAgentId = (x: unknown): x is string => v.is(agentId(), x);

const name = layerName();
const names = (max = 256) => list(name, max);
const hex64 = v.pipe(v.string('must be 64 hex digits'), v.regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits'));

// ---- the team file ----------------------------------------------------------------------------

export const TEAM_FILE = 'strata.team.json';
export const TEAM_FILE_FORMAT = 1;

// The file is read by people: each field gets one message saying what it must hold.
const teamFileFields = obj(
  {
    format: v.literal(TEAM_FILE_FORMAT, (i) => `must be ${TEAM_FILE_FORMAT}, got ${JSON.stringify(i.input)}`),
    /** Team id: agents refuse peers of another team. */
    team: layerName('must be a name (letters, digits, . _ + -)'),
    /** ws:// or wss:// addresses of relays (or agents that listen). */
    relays: whole(v.array(v.pipe(v.string(), v.regex(/^wss?:\/\/[^\s]+$/))), 'must be a list of ws:// or wss:// addresses'),
    /** Team layers and their content digests ("sha256:<hex>"). Only these are relayed. */
    layers: v.nullish(
      whole(
        rec(name, obj({ digest: v.pipe(v.string(), v.regex(/^sha256:[0-9a-f]{64}$/)), version: v.optional(v.string()) })),
        'must map layer names to {"digest": "sha256:<64 hex>"}',
      ),
      {},
    ),
    /** The team's default active set. */
    defaults: v.nullish(whole(names(), 'must be a list of layer names'), []),
    /** Swap slots: layers of one slot are mutually exclusive; a swap between them is one decision. */
    slots: v.nullish(whole(rec(name, names()), 'must map slot names to lists of layer names'), {}),
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
export const HlcSchema = obj({ wall: count(), logical: count(), agent: agentId() }, 'must be an HLC timestamp {wall, logical, agent}');
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

/** Highest event seq seen (or applied), per origin. */
export const SeenSchema = v.pipe(
  rec(
    agentId((i) => `bad origin ${JSON.stringify(i.input).slice(0, 80)}`),
    count(),
  ),
  v.maxEntries(10_000, 'must have at most 10000 origins'),
);

const writes = v.pipe(
  v.array(RegisterWriteSchema, 'must be a list'),
  v.maxLength(64, (i) => `at most 64 writes per event, got ${i.input.length}`),
);
/** An event's writes: one to 64. */
export const EventWritesSchema = v.pipe(writes, v.minLength(1, 'an event needs at least one write'));

/** One decision by one agent: writes applied together, never half-way. */
export const TeamEventSchema = obj({
  origin: agentId(),
  seq: int(1, Number.MAX_SAFE_INTEGER, 'must be a positive integer'),
  tag: HlcSchema,
  writes: EventWritesSchema,
  user: text(64),
  host: text(128),
  /** What the registers held before, as the origin saw them (for revert). */
  prev: writes,
  /** Set when this event reverts another (its eventId). */
  reverts: v.optional(text(140)),
});
export type TeamEvent = v.InferOutput<typeof TeamEventSchema>;
export const isTeamEvent = (x: unknown): x is TeamEvent => v.is(TeamEventSchema, x);

/** The id of an event: "origin:seq". */
export function eventId(ev: { origin: string; seq: number }): string {
  return `${ev.origin}:${ev.seq}`;
}

/** What an agent runs and holds, sent on change and with every heartbeat. */
export const PresenceSchema = obj({
  agent: agentId(),
  pseq: count(),
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
  at: count(),
});
export type Presence = v.InferOutput<typeof PresenceSchema>;

/** The exchange on (re)connect: registers, the contiguous seen vector, and recent events. */
const snapshotEntries = { registers: RegistersSchema, seen: SeenSchema, events: list(TeamEventSchema, 1000) };
export const TeamSnapshotSchema = obj(snapshotEntries);
export type TeamSnapshot = v.InferOutput<typeof TeamSnapshotSchema>;

// ---- frames -------------------------------------------------------------------------------------

const FRAMES = {
  hello: tagged({ t: v.literal('hello'), v: count(), team: name, agent: agentId(), nonce: hex64 }),
  challenge: tagged({ t: v.literal('challenge'), v: count(), team: name, agent: agentId(), nonce: hex64, proof: hex64 }),
  auth: tagged({ t: v.literal('auth'), proof: hex64 }),
  welcome: tagged({ t: v.literal('welcome') }),
  /** After welcome: what this side has seen, so the other sends the events it lacks, then its snapshot. */
  have: tagged({ t: v.literal('have'), seen: SeenSchema }),
  snapshot: tagged({ t: v.literal('snapshot'), ...snapshotEntries }),
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
