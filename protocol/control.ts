/**
 * The local control channel: CLI and extension <-> agent, newline-delimited JSON over a Unix socket.
 * Every method is declared once here, in METHODS, as schemas of its params and result; the types
 * are derived from them. The agent checks incoming params with them (`checkRequest`), the client
 * checks results and pushed events (`checkIncoming`, `checkResult`).
 */
import * as v from 'valibot';
import { ErrorInfo, ErrorInfoSchema, ProblemSchema } from './errors';
import { LayerInfoSchema } from './layer';
import { TeamEventSchema } from './team';
import {
  Issue,
  bool,
  count,
  fieldMessages,
  int,
  isMissingField,
  isUnknownField,
  issueMessage,
  list,
  num,
  obj,
  plainObject,
  str,
  tagged,
  utf8Length,
} from './schema';

export const CONTROL_PROTOCOL_VERSION = 1;
/** Largest accepted line, in bytes. Control messages are small; layer content never travels here. */
export const MAX_CONTROL_MESSAGE = 256 * 1024;

// ---- results ----------------------------------------------------------------------------------

const strings = list(str());

export const ViewInfoSchema = obj({
  base: str(),
  mountpoint: str(),
  inPlace: bool(),
  state: v.picklist(['mounted', 'failed'], 'must be "mounted" or "failed"'),
  error: v.optional(str()),
});
export type ViewInfo = v.InferOutput<typeof ViewInfoSchema>;

export interface OpenFileHolder {
  pid: number;
  command: string;
  path: string;
}

/** A process still holding a file that a switch replaced: it runs the old version until restarted. */
export const StaleHolderSchema = obj({
  pid: int(0),
  command: str(),
  /** The file, as an absolute path in the view. */
  path: str(),
  /** Where the file it holds came from: a layer, or null for the base folder. */
  layer: v.nullable(str()),
});
export type StaleHolder = v.InferOutput<typeof StaleHolderSchema>;

/** What a change did to the views: the view paths it touched (in every view) and who runs what was there before (a switch names those in a second event, after its answer). */
export const ViewChangeSchema = obj({ paths: strings, stale: list(StaleHolderSchema) });
export type ViewChange = v.InferOutput<typeof ViewChangeSchema>;

export const AgentStatusSchema = obj({
  protocol: int(0),
  pid: int(0),
  home: str(),
  socket: str(),
  active: strings,
  layers: list(LayerInfoSchema),
  views: list(ViewInfoSchema),
});
export type AgentStatus = v.InferOutput<typeof AgentStatusSchema>;

export const TeamPeerInfoSchema = obj({
  agent: str(),
  user: str(),
  host: str(),
  /** connected: a direct link; via-relay: known through another peer; gone: presence is stale. */
  connection: v.picklist(['connected', 'via-relay', 'gone'], 'must be "connected", "via-relay" or "gone"'),
  /** null for a standalone relay. */
  active: v.nullable(strings),
  held: strings,
  busy: strings,
  /** Team layers this peer runs that differ from the team's active set (+name / -name) or from the team file's digest (~name). */
  drift: strings,
  lastSeen: num(),
});
/** `layer show`: the layer with its content digest, as strata.team.json pins it ("sha256:<hex>"). */
export const LayerDetailSchema = v.intersect([LayerInfoSchema, obj({ digest: str() })]);
export type LayerDetail = v.InferOutput<typeof LayerDetailSchema>;

export type TeamPeerInfo = v.InferOutput<typeof TeamPeerInfoSchema>;

export const TeamStatusSchema = obj({
  joined: bool(),
  team: v.optional(str()),
  agent: v.optional(str()),
  /** This agent's user name, as its teammates see it (the agent id is its key's fingerprint). */
  user: v.optional(str()),
  relays: v.optional(list(obj({ url: str(), state: str() }))),
  listen: v.optional(v.nullable(str())),
  teamFile: v.optional(str()),
  /** The team layers (those the team file lists). */
  teamLayers: v.optional(strings),
  /** The team's active set as the replicated registers say. */
  desired: v.optional(strings),
  /**
   * This agent's drift from it (+name: active here only, -name: missing here, ~name: content
   * differs from the team file's digest), with held layers.
   */
  drift: v.optional(strings),
  held: v.optional(strings),
  peers: v.optional(list(TeamPeerInfoSchema)),
  /** The team's latest decision (by anyone), how many agents applied it, and the decision itself. */
  lastDecision: v.optional(obj({ id: str(), applied: count(), of: count(), event: v.optional(TeamEventSchema) })),
  /** Team layers whose content here differs from the team file's digest, with this agent's digest. */
  contentDrift: v.optional(list(obj({ layer: str(), expected: str(), here: str() }))),
  /** Team layers missing here and being pulled. */
  pulling: v.optional(list(obj({ layer: str(), done: num(), total: num() }))),
});
export type TeamStatus = v.InferOutput<typeof TeamStatusSchema>;

// ---- methods ----------------------------------------------------------------------------------

// A parameter's message is its type as the errors name it: `parameter "names" must be string[]`.
const P = {
  string: v.string('string'),
  number: v.pipe(v.number('number'), v.finite('number')),
  boolean: v.boolean('boolean'),
  strings: v.array(v.string('string[]'), 'string[]'),
  object: plainObject('object'),
  mappings: v.array(
    v.custom<{ original: string; destination: string }>((x) => {
      if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
      const keys = Object.keys(x);
      const m = x as Record<string, unknown>;
      return keys.length === 2 && typeof m.original === 'string' && typeof m.destination === 'string';
    }, '{original, destination}[]'),
    '{original, destination}[]',
  ),
};
/** Params: exactly these (unknown keys are refused so typos do not pass silently). */
function params<const E extends v.ObjectEntries>(entries: E) {
  return v.strictObject(entries, fieldMessages(entries, 'object'));
}
const none = params({});
const named = params({ name: P.string });
const opt = v.optional;

export const METHODS = {
  status: { params: none, result: AgentStatusSchema },
  'layer.list': { params: none, result: list(LayerInfoSchema) },
  'layer.show': { params: named, result: LayerDetailSchema },
  'layer.create': {
    /** from: a folder or a .tar.gz/.tgz/.tar.xz/.txz/.zip archive; mappings replace the default "/" → "/". */
    params: params({
      name: P.string,
      from: P.string,
      priority: opt(P.number),
      version: opt(P.string),
      description: opt(P.string),
      mappings: opt(P.mappings),
      requires: opt(P.strings),
    }),
    result: LayerInfoSchema,
  },
  'layer.rm': { params: named, result: obj({ removed: str() }) },
  'layer.map': { params: params({ name: P.string, original: P.string, destination: P.string }), result: LayerInfoSchema },
  'layer.unmap': { params: params({ name: P.string, original: P.string }), result: LayerInfoSchema },
  'layer.exclude': { params: params({ name: P.string, path: P.string }), result: LayerInfoSchema },
  /** Add a delete entry: the path is hidden while the layer is active. */
  'layer.hide': { params: params({ name: P.string, path: P.string }), result: LayerInfoSchema },
  /** Replace a layer's editable fields (the layer editor's save); the agent checks `spec` as a layer.json. */
  'layer.update': { params: params({ name: P.string, spec: P.object }), result: LayerInfoSchema },
  /**
   * Check a spec without saving it; returns the problems found (empty when valid). Warnings (a
   * destination not in the layer's files, a required layer not in the store) do not refuse a save.
   */
  'layer.validate': { params: params({ spec: opt(v.unknown()) }), result: obj({ problems: list(ProblemSchema) }) },
  'layer.reset': { params: named, result: LayerInfoSchema },
  'layer.export': {
    /** Progress events (task "export NAME") count the archive's bytes. */
    params: params({ name: P.string, file: P.string }),
    result: obj({ file: str(), bytes: count(), sha256: str() }),
  },
  'layer.import': { params: params({ file: P.string }), result: LayerInfoSchema },
  'view.add': { params: params({ base: P.string, at: opt(P.string), warm: opt(P.boolean) }), result: ViewInfoSchema },
  'view.list': { params: none, result: list(ViewInfoSchema) },
  'view.rm': { params: params({ base: P.string }), result: obj({ removed: str() }) },
  activate: {
    params: params({ names: P.strings, whenIdle: opt(P.boolean), timeoutMs: opt(P.number) }),
    result: obj({ active: strings, decision: v.optional(str()) }),
  },
  deactivate: { params: params({ names: P.strings, force: opt(P.boolean) }), result: obj({ active: strings }) },
  /** force: as deactivate's, switch even while files of OLD are open. */
  swap: { params: params({ old: P.string, new: P.string, force: opt(P.boolean) }), result: obj({ active: strings }) },
  'team.join': {
    /** teamText: the team file's content, read by the client (the agent never reads inside its views). */
    params: params({
      url: P.string,
      secretFile: P.string,
      name: opt(P.string),
      teamFile: P.string,
      teamText: opt(P.string),
      listen: opt(P.string),
      /** NATS mode: a file (0600) with this agent's NATS credentials. */
      credentials: opt(P.string),
    }),
    result: TeamStatusSchema,
  },
  'team.leave': { params: none, result: obj({ left: str() }) },
  'team.status': { params: none, result: TeamStatusSchema },
  'team.history': { params: none, result: list(TeamEventSchema) },
  'team.revert': { params: params({ id: P.string }), result: obj({ decision: str(), active: strings }) },
  /** Keep a team layer as this agent has it (hold: true) or follow the team again (false). */
  'team.hold': { params: params({ name: P.string, hold: P.boolean }), result: TeamStatusSchema },
  /** Read the team file again (its text sent by the client, as at join): new digests, defaults and slots apply at once. */
  'team.reload': { params: params({ teamText: opt(P.string) }), result: TeamStatusSchema },
  /**
   * NATS teams: delete the layer archives in the Object Store that neither this agent's team file
   * nor any teammate's presence names (dryRun: only list them).
   */
  'team.prune': {
    params: params({ dryRun: opt(P.boolean) }),
    result: obj({ dryRun: bool(), removed: list(obj({ digest: str(), layer: str(), bytes: count() })), kept: count() }),
  },
  /** Start receiving `StateEvent`s on this connection. */
  subscribe: { params: none, result: AgentStatusSchema },
  /** keepViews: the views keep serving (their servers run on) for the next agent to reconnect. */
  'agent.stop': { params: params({ keepViews: opt(P.boolean) }), result: obj({ stopping: v.literal(true, 'must be true') }) },
};
type MethodSchemas = typeof METHODS;
export type Method = keyof MethodSchemas;
export type Params<M extends Method> = v.InferOutput<MethodSchemas[M]['params']>;
export type Result<M extends Method> = v.InferOutput<MethodSchemas[M]['result']>;
export type Methods = { [M in Method]: { params: Params<M>; result: Result<M> } };

export function isMethod(x: unknown): x is Method {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(METHODS, x);
}

// ---- messages ---------------------------------------------------------------------------------

const requestId = v.pipe(v.number(), v.integer());

export interface Request<M extends Method = Method> {
  id: v.InferOutput<typeof requestId>;
  method: M;
  params: Params<M>;
}

export const ResponseSchema = v.variant('ok', [
  tagged({ id: num(), ok: v.literal(true), result: v.unknown() }),
  tagged({ id: num(), ok: v.literal(false), error: ErrorInfoSchema }),
]);
export type Response = v.InferOutput<typeof ResponseSchema>;

/**
 * Pushed to subscribers after every change; carries the whole status (small, and never stale), and
 * for a change to what the views serve (a switch, an active layer's edit) what it changed there.
 */
export const StateEventSchema = tagged({
  event: v.literal('state'),
  reason: str(),
  status: AgentStatusSchema,
  change: v.optional(ViewChangeSchema),
});
export type StateEvent = v.InferOutput<typeof StateEventSchema>;

/** Pushed to subscribers during long work (importing or pulling a layer). */
export const ProgressEventSchema = tagged({
  event: v.literal('progress'),
  task: str(),
  message: str(),
  done: v.optional(num()),
  total: v.optional(num()),
});
export type ProgressEvent = v.InferOutput<typeof ProgressEventSchema>;

const IncomingSchema = v.union([ResponseSchema, v.variant('event', [StateEventSchema, ProgressEventSchema])]);

// ---- checks -----------------------------------------------------------------------------------

export type Checked<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo; id?: number };

const badRequest = (message: string, id?: number): Checked<never> => ({ ok: false, id, error: { code: 'E_BAD_REQUEST', message } });

/** The first problem with a method's params, worded as the agent has always worded it. */
function paramProblem(issues: readonly Issue[]): string {
  const issue = issues.find(isUnknownField) ?? issues[0];
  const key = String(issue.path?.[0]?.key ?? '');
  if (isUnknownField(issue)) return `unknown parameter "${key}"`;
  if (isMissingField(issue)) return `missing parameter "${key}" (${issue.message})`;
  return `parameter "${key}" must be ${issue.message}`;
}

/** Parse and validate one incoming line. Never throws. */
export function checkRequest(line: string): Checked<Request> {
  const bytes = utf8Length(line);
  if (bytes > MAX_CONTROL_MESSAGE) {
    return {
      ok: false,
      error: { code: 'E_TOO_LARGE', message: `message of ${bytes} bytes exceeds the ${MAX_CONTROL_MESSAGE}-byte limit` },
    };
  }
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    return badRequest(`message is not JSON: ${(e as Error).message}`);
  }
  if (!v.is(plainObject(), msg)) return badRequest('message must be a JSON object');
  if (!v.is(requestId, msg.id)) return badRequest('message needs an integer "id"');
  const id = msg.id;
  const method = msg.method;
  if (!isMethod(method)) {
    return { ok: false, id, error: { code: 'E_UNKNOWN_METHOD', message: `unknown method ${JSON.stringify(method)}` } };
  }
  const raw = msg.params === undefined ? {} : msg.params;
  if (!v.is(plainObject(), raw)) return badRequest(`${method}: "params" must be an object`, id);
  const r = v.safeParse(METHODS[method].params as v.GenericSchema<unknown, Params<Method>>, raw);
  if (!r.success) return badRequest(`${method}: ${paramProblem(r.issues)}`, id);
  return { ok: true, value: { id, method, params: r.output } };
}

/** Validate a response or event line on the client side (a response's result: `checkResult`). */
export function checkIncoming(line: string): Checked<Response | StateEvent | ProgressEvent> {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    return badRequest(`agent sent non-JSON: ${(e as Error).message}`);
  }
  if (typeof msg !== 'object' || msg === null) return badRequest('agent sent a non-object');
  // Checked, not rebuilt: what the agent sent is passed on as it came.
  return v.is(IncomingSchema, msg) ? { ok: true, value: msg } : badRequest('agent sent an unrecognised message');
}

/** Check a method's result as the client receives it; a problem names the method and the field. */
export function checkResult<M extends Method>(method: M, result: unknown): Checked<Result<M>> {
  const r = v.safeParse(METHODS[method].result as v.GenericSchema, result);
  if (r.success) return { ok: true, value: result as Result<M> };
  return badRequest(issueMessage(r.issues[0], `agent sent a malformed ${method} result`));
}
