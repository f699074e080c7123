/**
 * Paths a client names (an archive, an export target, a --from folder) must lie outside this
 * agent's own views: the agent would serve its own reads, and one synchronous call there would wait
 * on itself. They are compared by real path (a symlink into a view counts) and by device (so does a
 * bind mount of one). Only asynchronous calls here: inside a view, this same thread answers them.
 */
import * as fsp from 'fs/promises';
import * as path from 'path';
import { ViewInfo } from '../protocol';
import { isInside } from '../shared/paths';

/** The real path of `p`, which need not exist: that of its longest existing prefix, plus the rest. */
export async function realPath(p: string): Promise<string> {
  let probe = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await fsp.realpath(probe), ...rest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      const up = path.dirname(probe);
      if (up === probe) return path.resolve(p);
      rest.unshift(path.basename(probe));
      probe = up;
    }
  }
}

/** `p`'s real path, and the view among `views` that holds it, if any. */
export async function viewHolding(views: ViewInfo[], p: string): Promise<{ real: string; view?: ViewInfo }> {
  const real = await realPath(p);
  let dev: number | undefined;
  for (const v of views) {
    // The parent of a mountpoint lies outside the view: resolving it never asks the view.
    const mountpoint = path.join(await realPath(path.dirname(v.mountpoint)), path.basename(v.mountpoint));
    if (isInside(real, v.mountpoint) || isInside(real, mountpoint)) return { real, view: v };
    if (v.state !== 'mounted') continue;
    dev ??= await deviceOf(real);
    if (dev !== undefined && dev === (await deviceOf(mountpoint))) return { real, view: v };
  }
  return { real };
}

/** The device of `p`, or of its nearest existing parent. */
async function deviceOf(p: string): Promise<number | undefined> {
  for (let probe = p; ; probe = path.dirname(probe)) {
    const st = await fsp.stat(probe).catch(() => null);
    if (st) return st.dev;
    if (path.dirname(probe) === probe) return undefined;
  }
}
