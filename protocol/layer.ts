/**
 * A layer's description as it travels (agent results, the layer editor): the shape of layer.json,
 * shared by the agent, CLI, extension and webview. The agent's stricter reading of the file itself
 * (value limits, path normalization, format upgrades) is daemon/layerspec.ts.
 */
import * as v from 'valibot';
import { Message, bool, int, list, num, obj, text } from './schema';

/** The format this Strata writes. Older formats are upgraded on read; newer ones are refused. */
export const LAYER_FORMAT = 2;

/** Names of layers (and of teams and swap slots): letters, digits, . _ + -; up to 64; no leading punctuation. */
export const LAYER_NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._+-]{0,63}';
export const LAYER_NAME_RE = new RegExp(`^${LAYER_NAME_PATTERN}$`);

export function layerName(message: Message = 'must be a layer name (letters, digits, . _ + -; up to 64)') {
  return v.pipe(v.string(message), v.regex(LAYER_NAME_RE, message));
}

// Limits are generous: they bound what the editor may send, while the agent judges the values
// (and names the field) when it validates or saves.
const mappingEntries = {
  /** A path in the view, relative to its root, written '/a/b' ('/' is the whole view). */
  original: text(4096),
  /** A path inside the layer's read-only files, relative to them: '' or '/' is the whole layer. */
  destination: text(4096),
};
export const MappingSchema = obj(mappingEntries);
export type Mapping = v.InferOutput<typeof MappingSchema>;

const layerSpecEntries = {
  format: v.literal(LAYER_FORMAT, `must be ${LAYER_FORMAT}`),
  name: text(256),
  version: text(4096),
  description: text(65536),
  /** Higher wins when two active layers map the same path. NaN passes: the agent names the field. */
  priority: v.union([num(), v.nan()], 'must be a number'),
  mappings: list(MappingSchema, 10_000),
  /** View paths that always pass through to the base, even inside a mapping. */
  excludes: list(text(4096), 10_000),
  /** View paths hidden while the layer is active (delete entries). */
  deletes: list(text(4096), 10_000),
  /**
   * Layers activated with this one (before it), like Lmod's depends_on. Absent when none, so a
   * layer.json without requirements reads as before (and older Strata can import it).
   */
  requires: v.optional(list(text(256), 1000)),
};
export const LayerSpecSchema = obj(layerSpecEntries);
export type LayerSpec = v.InferOutput<typeof LayerSpecSchema>;

/** A layer as the agent reports it. */
export const LayerInfoSchema = obj({
  ...layerSpecEntries,
  active: bool(),
  /** Bytes written into the writable sublayer since the last reset. */
  writableBytes: int(0),
});
export type LayerInfo = v.InferOutput<typeof LayerInfoSchema>;
