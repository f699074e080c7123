/**
 * The local control channel: CLI and extension <-> agent, newline-delimited JSON over a Unix socket.
 * Every method is declared once here with its params and result; `checkRequest` validates an
 * incoming line before the agent dispatches it.
 */
import { ErrorInfo, isErrorCode } from './errors';
import { LayerInfo, LayerSpec } from './layer';
import type { TeamEvent } from './team';

export const CONTROL_PROTOCOL_VERSION = 1;
/** Largest accepted line, in bytes. Control messages are small; layer content never travels here. */
export const MAX_CONTROL_MESSAGE = 256 * 1024;

export interface ViewInfo {
  base: string;
  mountpoint: string;
  inPlace: boolean;
  state: 'mounted' | 'failed';
  error?: string;
}

export interface OpenFileHolder {
  pid: number;
  command: string;
  path: string;
}

export interface AgentStatus {
  protocol: number;
  pid: number;
  home: string;
  socket: string;
  active: string[];
  layers: LayerInfo[];
  views: ViewInfo[];
}

export interface TeamPeerInfo {
  agent: string;
  user: string;
  host: string;
  /** connected: a direct link; via-relay: known through another peer; gone: presence is stale. */
  connection: 'connected' | 'via-relay' | 'gone';
  /** null for a standalone relay. */
  active: string[] | null;
  held: string[];
  busy: string[];
  /** Team layers this peer runs that differ from the team's active set (+name / -name). */
  drift: string[];
  lastSeen: number;
}

export interface TeamStatus {
  joined: boolean;
  team?: string;
  agent?: string;
  relays?: { url: string; state: string }[];
  listen?: string | null;
  teamFile?: string;
  /** The team's active set as the replicated registers say. */
  desired?: string[];
  /** This agent's drift from it (+name: active here only, -name: missing here), with held layers. */
  drift?: string[];
  held?: string[];
  peers?: TeamPeerInfo[];
  /** The last decision made here and how many agents applied it. */
  lastDecision?: { id: string; applied: number; of: number };
  /** Team layers missing here and being pulled. */
  pulling?: { layer: string; done: number; total: number }[];
}

export interface Methods {
  'status': { params: Record<string, never>; result: AgentStatus };
  'layer.list': { params: Record<string, never>; result: LayerInfo[] };
  'layer.show': { params: { name: string }; result: LayerInfo };
  'layer.create': {
    params: { name: string; from: string; priority?: number; version?: string; description?: string };
    result: LayerInfo;
  };
  'layer.rm': { params: { name: string }; result: { removed: string } };
  'layer.map': { params: { name: string; original: string; destination: string }; result: LayerInfo };
  'layer.unmap': { params: { name: string; original: string }; result: LayerInfo };
  'layer.exclude': { params: { name: string; path: string }; result: LayerInfo };
  'layer.hide': { params: { name: string; path: string }; result: LayerInfo };
  /** Replace a layer's editable fields (the layer editor's save). Renames when spec.name differs. */
  'layer.update': { params: { name: string; spec: LayerSpec }; result: LayerInfo };
  /** Check a spec without saving it; returns the problems found (empty when valid). */
  'layer.validate': { params: { spec: unknown }; result: { problems: ErrorInfo[] } };
  'layer.reset': { params: { name: string }; result: LayerInfo };
  'layer.export': { params: { name: string; file: string }; result: { file: string; bytes: number; sha256: string } };
  'layer.import': { params: { file: string }; result: LayerInfo };
  'view.add': { params: { base: string; at?: string }; result: ViewInfo };
  'view.list': { params: Record<string, never>; result: ViewInfo[] };
  'view.rm': { params: { base: string }; result: { removed: string } };
  'activate': { params: { names: string[]; whenIdle?: boolean; timeoutMs?: number }; result: { active: string[]; decision?: string } };
  'deactivate': { params: { names: string[]; force?: boolean }; result: { active: string[] } };
  'swap': { params: { old: string; new: string }; result: { active: string[] } };
  'team.join': {
    /** teamText: the team file's content, read by the client (the agent never reads inside its views). */
    params: { url: string; secretFile: string; name?: string; teamFile: string; teamText?: string; listen?: string };
    result: TeamStatus;
  };
  'team.leave': { params: Record<string, never>; result: { left: string } };
  'team.status': { params: Record<string, never>; result: TeamStatus };
  'team.history': { params: Record<string, never>; result: TeamEvent[] };
  'team.revert': { params: { id: string }; result: { decision: string; active: string[] } };
  /** Keep a team layer as this agent has it (hold: true) or follow the team again (false). */
  'team.hold': { params: { name: string; hold: boolean }; result: TeamStatus };
  /** Start receiving `StateEvent`s on this connection. */
  'subscribe': { params: Record<string, never>; result: AgentStatus };
  'agent.stop': { params: Record<string, never>; result: { stopping: true } };
}
export type Method = keyof Methods;
export type Params<M extends Method> = Methods[M]['params'];
export type Result<M extends Method> = Methods[M]['result'];

export interface Request<M extends Method = Method> {
  id: number;
  method: M;
  params: Params<M>;
}
export type Response =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: ErrorInfo };

/** Pushed to subscribers after every change; carries the whole status (small, and never stale). */
export interface StateEvent {
  event: 'state';
  reason: string;
  status: AgentStatus;
}

/** Pushed to subscribers during long work (importing or pulling a layer). */
export interface ProgressEvent {
  event: 'progress';
  task: string;
  message: string;
  done?: number;
  total?: number;
}

// ---- validation -------------------------------------------------------------------------------

type FieldType = 'string' | 'number' | 'boolean' | 'string[]' | 'object' | 'any';
interface FieldRule { type: FieldType; optional?: boolean }
const S: FieldRule = { type: 'string' };
const N_OPT: FieldRule = { type: 'number', optional: true };
const S_OPT: FieldRule = { type: 'string', optional: true };

/** Shape of every method's params. Unknown keys are refused so typos do not pass silently. */
export const PARAM_RULES: { [M in Method]: Record<string, FieldRule> } = {
  'status': {},
  'layer.list': {},
  'layer.show': { name: S },
  'layer.create': { name: S, from: S, priority: N_OPT, version: S_OPT, description: S_OPT },
  'layer.rm': { name: S },
  'layer.map': { name: S, original: S, destination: S },
  'layer.unmap': { name: S, original: S },
  'layer.exclude': { name: S, path: S },
  'layer.hide': { name: S, path: S },
  'layer.update': { name: S, spec: { type: 'object' } },
  'layer.validate': { spec: { type: 'any' } },
  'layer.reset': { name: S },
  'layer.export': { name: S, file: S },
  'layer.import': { file: S },
  'view.add': { base: S, at: S_OPT },
  'view.list': {},
  'view.rm': { base: S },
  'activate': { names: { type: 'string[]' }, whenIdle: { type: 'boolean', optional: true }, timeoutMs: N_OPT },
  'deactivate': { names: { type: 'string[]' }, force: { type: 'boolean', optional: true } },
  'swap': { old: S, new: S },
  'team.join': { url: S, secretFile: S, name: S_OPT, teamFile: S, teamText: S_OPT, listen: S_OPT },
  'team.leave': {},
  'team.status': {},
  'team.history': {},
  'team.revert': { id: S },
  'team.hold': { name: S, hold: { type: 'boolean' } },
  'subscribe': {},
  'agent.stop': {},
};

export function isMethod(v: unknown): v is Method {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(PARAM_RULES, v);
}

function fieldOk(rule: FieldRule, v: unknown): boolean {
  switch (rule.type) {
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'boolean': return typeof v === 'boolean';
    case 'string[]': return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'any': return true;
  }
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo; id?: number };

/** UTF-8 length without Node's Buffer, so this file also runs in a webview. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

/** Parse and validate one incoming line. Never throws. */
export function checkRequest(line: string): Checked<Request> {
  const bytes = utf8Length(line);
  if (bytes > MAX_CONTROL_MESSAGE) {
    return { ok: false, error: { code: 'E_TOO_LARGE', message: `message of ${bytes} bytes exceeds the ${MAX_CONTROL_MESSAGE}-byte limit` } };
  }
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: { code: 'E_BAD_REQUEST', message: `message is not JSON: ${(e as Error).message}` } };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { ok: false, error: { code: 'E_BAD_REQUEST', message: 'message must be a JSON object' } };
  }
  const m = msg as Record<string, unknown>;
  if (typeof m.id !== 'number' || !Number.isInteger(m.id)) {
    return { ok: false, error: { code: 'E_BAD_REQUEST', message: 'message needs an integer "id"' } };
  }
  const id = m.id;
  if (!isMethod(m.method)) {
    return { ok: false, id, error: { code: 'E_UNKNOWN_METHOD', message: `unknown method ${JSON.stringify(m.method)}` } };
  }
  const params = m.params === undefined ? {} : m.params;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    return { ok: false, id, error: { code: 'E_BAD_REQUEST', message: `${m.method}: "params" must be an object` } };
  }
  const rules = PARAM_RULES[m.method];
  const p = params as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (!Object.prototype.hasOwnProperty.call(rules, key)) {
      return { ok: false, id, error: { code: 'E_BAD_REQUEST', message: `${m.method}: unknown parameter "${key}"` } };
    }
  }
  for (const [key, rule] of Object.entries(rules)) {
    const v = p[key];
    if (v === undefined) {
      if (!rule.optional && rule.type !== 'any') {
        return { ok: false, id, error: { code: 'E_BAD_REQUEST', message: `${m.method}: missing parameter "${key}" (${rule.type})` } };
      }
      continue;
    }
    if (!fieldOk(rule, v)) {
      return { ok: false, id, error: { code: 'E_BAD_REQUEST', message: `${m.method}: parameter "${key}" must be ${rule.type}` } };
    }
  }
  return { ok: true, value: { id, method: m.method, params: p as Params<Method> } };
}

/** Validate a response or event line on the client side. */
export function checkIncoming(line: string): Checked<Response | StateEvent | ProgressEvent> {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    return { ok: false, error: { code: 'E_BAD_REQUEST', message: `agent sent non-JSON: ${(e as Error).message}` } };
  }
  if (typeof msg !== 'object' || msg === null) {
    return { ok: false, error: { code: 'E_BAD_REQUEST', message: 'agent sent a non-object' } };
  }
  const m = msg as Record<string, unknown>;
  if (m.event === 'state' && typeof m.status === 'object' && m.status !== null && !Array.isArray(m.status)) {
    return { ok: true, value: msg as StateEvent };
  }
  if (m.event === 'progress' && typeof m.task === 'string' && typeof m.message === 'string') {
    return { ok: true, value: msg as ProgressEvent };
  }
  if (typeof m.id === 'number' && m.ok === true && 'result' in m) return { ok: true, value: msg as Response };
  if (typeof m.id === 'number' && m.ok === false && typeof m.error === 'object' && m.error !== null) {
    const err = m.error as Record<string, unknown>;
    if (isErrorCode(err.code) && typeof err.message === 'string') return { ok: true, value: msg as Response };
  }
  return { ok: false, error: { code: 'E_BAD_REQUEST', message: 'agent sent an unrecognised message' } };
}
