/** The on-disk layer description (`layer.json`), shared by the agent, CLI and extension. */

/** The format this Strata writes. Older formats are upgraded on read; newer ones are refused. */
export const LAYER_FORMAT = 2;

export interface Mapping {
  /** A path in the view, relative to its root, written '/a/b' ('/' is the whole view). */
  original: string;
  /** A path inside the layer's read-only files, relative to them: '' or '/' is the whole layer. */
  destination: string;
}

export interface LayerSpec {
  format: typeof LAYER_FORMAT;
  name: string;
  version: string;
  description: string;
  /** Higher wins when two active layers map the same path. */
  priority: number;
  mappings: Mapping[];
  /** View paths that always pass through to the base, even inside a mapping. */
  excludes: string[];
  /** View paths hidden while the layer is active (delete entries). */
  deletes: string[];
}

/** A layer as the agent reports it. */
export interface LayerInfo extends LayerSpec {
  active: boolean;
  /** Bytes written into the writable sublayer since the last reset. */
  writableBytes: number;
}

export const LAYER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
