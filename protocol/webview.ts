/**
 * The layer editor's messages: extension host <-> webview (postMessage). Both sides treat what
 * arrives as untrusted and check it with the guards below before dispatching.
 *
 * Handshake: the webview posts `ready` (with its protocol version) first; the host posts nothing
 * before that, then answers with `load`. Requests carry a `requestId` that the reply repeats, and a
 * failed request always gets a reply (`error` or `saveFailed`), never silence.
 */
import { ErrorCode, isErrorCode } from './errors';
import { LayerSpec } from './layer';

export const WEBVIEW_PROTOCOL_VERSION = 1;

/**
 * A problem attached to the field it concerns, named as the agent names fields:
 * 'name', 'version', 'description', 'priority', 'mappings', 'mappings[2].destination',
 * 'excludes[0]', 'deletes[1]'; '' when it concerns the whole layer.
 */
export interface FieldProblem {
  field: string;
  code: ErrorCode;
  message: string;
}

/** What a browse request picks: a view path (original, exclude, delete) or a layer path (destination). */
export type PathKind = 'original' | 'destination' | 'exclude' | 'delete';
export const PATH_KINDS: readonly PathKind[] = ['original', 'destination', 'exclude', 'delete'];

/** Host -> webview. */
export type HostMessage =
  /** The layer to edit (null: none selected, or the agent is down; `notice` says which). */
  | {
      type: 'load';
      layer: LayerSpec | null;
      active: boolean;
      /** The agent refuses renames today; the name field is read-only when false. */
      canRename: boolean;
      connected: boolean;
      notice?: string;
    }
  | { type: 'validated'; requestId: number; problems: FieldProblem[] }
  | { type: 'saved'; requestId: number; layer: LayerSpec }
  | { type: 'saveFailed'; requestId: number; problems: FieldProblem[] }
  /** A browse answer: the path to put in the field, or null with the reason when nothing fits. */
  | { type: 'picked'; requestId: number; value: string | null; problem?: string }
  | { type: 'error'; requestId?: number; message: string };

/** Webview -> host. */
export type WebviewMessage =
  | { type: 'ready'; v: number }
  | { type: 'reload' }
  | { type: 'validate'; requestId: number; spec: LayerSpec }
  /** Save `spec` over the layer loaded as `name`. */
  | { type: 'save'; requestId: number; name: string; spec: LayerSpec }
  | { type: 'browse'; requestId: number; kind: PathKind; layer: string };

// ---- guards ------------------------------------------------------------------------------------

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length <= max;
const isReqId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.length <= 10_000 && v.every((s) => isStr(s));

/**
 * The shape of a spec as typed in the editor. Values are not judged here (the agent's
 * `layer.validate` does that and names the field); a NaN priority is let through for it to refuse.
 */
export function isLayerSpecShape(v: unknown): v is LayerSpec {
  return (
    isObj(v) && typeof v.format === 'number' && isStr(v.name, 256) && isStr(v.version) && isStr(v.description, 65536) &&
    typeof v.priority === 'number' &&
    Array.isArray(v.mappings) && v.mappings.length <= 10_000 &&
    v.mappings.every((m) => isObj(m) && isStr(m.original) && isStr(m.destination)) &&
    isStrList(v.excludes) && isStrList(v.deletes)
  );
}

function isProblems(v: unknown): v is FieldProblem[] {
  return Array.isArray(v) && v.every((p) => isObj(p) && isStr(p.field, 256) && isErrorCode(p.code) && isStr(p.message, 65536));
}

export function isWebviewMessage(v: unknown): v is WebviewMessage {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready': return typeof v.v === 'number';
    case 'reload': return true;
    case 'validate': return isReqId(v.requestId) && isLayerSpecShape(v.spec);
    case 'save': return isReqId(v.requestId) && isStr(v.name, 256) && isLayerSpecShape(v.spec);
    case 'browse': return isReqId(v.requestId) && (PATH_KINDS as readonly unknown[]).includes(v.kind) && isStr(v.layer, 256);
    default: return false;
  }
}

export function isHostMessage(v: unknown): v is HostMessage {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'load':
      return (v.layer === null || isLayerSpecShape(v.layer)) && typeof v.active === 'boolean' && typeof v.canRename === 'boolean' &&
        typeof v.connected === 'boolean' && (v.notice === undefined || isStr(v.notice));
    case 'validated':
    case 'saveFailed':
      return isReqId(v.requestId) && isProblems(v.problems);
    case 'saved': return isReqId(v.requestId) && isLayerSpecShape(v.layer);
    case 'picked': return isReqId(v.requestId) && (v.value === null || isStr(v.value)) && (v.problem === undefined || isStr(v.problem));
    case 'error': return (v.requestId === undefined || isReqId(v.requestId)) && isStr(v.message, 65536);
    default: return false;
  }
}
