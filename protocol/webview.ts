/**
 * The layer editor's messages: extension host <-> webview (postMessage). Both sides treat what
 * arrives as untrusted and check it with the guards below before dispatching.
 *
 * Handshake: the webview posts `ready` (with its protocol version) first; the host posts nothing
 * before that, then answers with `load`. Requests carry a `requestId` that the reply repeats, and a
 * failed request always gets a reply (`error` or `saveFailed`), never silence.
 */
import * as v from 'valibot';
import { ErrorCodeSchema } from './errors';
import { LayerSpecSchema } from './layer';
import { bool, count, num, obj, tagged, text } from './schema';

export const WEBVIEW_PROTOCOL_VERSION = 1;

/**
 * A problem attached to the field it concerns, named as the agent names fields:
 * 'name', 'version', 'description', 'priority', 'mappings', 'mappings[2].destination',
 * 'excludes[0]', 'deletes[1]', 'requires[0]'; '' when it concerns the whole layer.
 */
export const FieldProblemSchema = obj({
  field: text(256),
  code: ErrorCodeSchema,
  message: text(65536),
  /** A warning is shown but does not stop a save. */
  severity: v.optional(v.picklist(['error', 'warning'])),
});
export type FieldProblem = v.InferOutput<typeof FieldProblemSchema>;

/** What a browse request picks: a view path (original, exclude, delete) or a layer path (destination). */
export const PATH_KINDS = ['original', 'destination', 'exclude', 'delete'] as const;
export type PathKind = (typeof PATH_KINDS)[number];

const requestId = count();
const problems = v.array(FieldProblemSchema);

/** Host -> webview. */
export const HostMessageSchema = v.variant('type', [
  /** The layer to edit (null: none selected, or the agent is down; `notice` says which). */
  tagged({
    type: v.literal('load'),
    layer: v.nullable(LayerSpecSchema),
    active: bool(),
    /** The agent refuses renames today; the name field is read-only when false. */
    canRename: bool(),
    connected: bool(),
    notice: v.optional(text(4096)),
  }),
  tagged({ type: v.literal('validated'), requestId, problems }),
  tagged({ type: v.literal('saved'), requestId, layer: LayerSpecSchema }),
  tagged({ type: v.literal('saveFailed'), requestId, problems }),
  /** A browse answer: the path to put in the field, or null with the reason when nothing fits. */
  tagged({ type: v.literal('picked'), requestId, value: v.nullable(text(4096)), problem: v.optional(text(4096)) }),
  tagged({ type: v.literal('error'), requestId: v.optional(requestId), message: text(65536) }),
]);
export type HostMessage = v.InferOutput<typeof HostMessageSchema>;

/** Webview -> host. */
export const WebviewMessageSchema = v.variant('type', [
  tagged({ type: v.literal('ready'), v: num() }),
  tagged({ type: v.literal('reload') }),
  tagged({ type: v.literal('validate'), requestId, spec: LayerSpecSchema }),
  /** Save `spec` over the layer loaded as `name`. */
  tagged({ type: v.literal('save'), requestId, name: text(256), spec: LayerSpecSchema }),
  tagged({ type: v.literal('browse'), requestId, kind: v.picklist(PATH_KINDS), layer: text(256) }),
]);
export type WebviewMessage = v.InferOutput<typeof WebviewMessageSchema>;

export function isWebviewMessage(x: unknown): x is WebviewMessage {
  return v.is(WebviewMessageSchema, x);
}

export function isHostMessage(x: unknown): x is HostMessage {
  return v.is(HostMessageSchema, x);
}
