/**
 * A path picked in a file dialog, as the editor's fields want it: a view path ('/tools/node') for
 * originals, excludes and delete entries; a layer path ('node-v20', '/' for the whole layer) for
 * destinations. Pure.
 */
import * as path from 'path';
import { ViewInfo } from '../../protocol';
import { isInside } from '../../shared/paths';

export type Mapped = { value: string } | { problem: string };

/** Relative to the view that holds `abs` (its mountpoint, or its base when served elsewhere). */
export function toViewPath(abs: string, views: readonly ViewInfo[]): Mapped {
  let best: { root: string; rel: string } | undefined;
  for (const v of views) {
    for (const root of new Set([v.mountpoint, v.base])) {
      if (isInside(abs, root) && (!best || root.length > best.root.length)) best = { root, rel: path.relative(root, abs) };
    }
  }
  if (!best) {
    const where = views.map((v) => v.mountpoint).join(', ');
    return { problem: `${abs} is not inside a Strata view${where ? ` (views: ${where})` : '; add a view first'}` };
  }
  return { value: '/' + best.rel.split(path.sep).filter(Boolean).join('/') };
}

/** Relative to the layer's files; '/' for their root. */
export function toLayerPath(abs: string, filesDir: string): Mapped {
  if (!isInside(abs, filesDir)) return { problem: `${abs} is not inside the layer's files (${filesDir})` };
  const rel = path.relative(filesDir, abs).split(path.sep).filter(Boolean).join('/');
  return { value: rel || '/' };
}
