/**
 * Writes under a mapping: they go to the owning layer's writable sublayer, so a path is copied up
 * there first and its parent directories are created with the view's modes. The base and a
 * layer's files are never modified through a redirected path.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { Resolution, baseName, parentOf } from '../../shared/resolver';
import { fail } from './syscalls';
import type { Found, ViewFs } from './viewfs';

/** Where `rel` lives in `layer`'s writable sublayer. */
export function wPath(vfs: ViewFs, layer: string, rel: string): string {
  return path.join(vfs.places.writableDir(layer), rel);
}

/** Anything below the owner's writable sublayer holding the path (needs a whiteout on delete). */
export async function existsBelowOwner(vfs: ViewFs, p: string, res: Resolution): Promise<boolean> {
  for (const s of vfs.sources(p, res)) {
    if (s.kind === 'writable' && s.layer === res.owner) continue;
    try {
      await fsp.lstat(vfs.realOf(s));
      return true;
    } catch {
      /* keep looking */
    }
  }
  return false;
}

/** Create the owner's writable directories down to the parent of `rel`. */
export async function ensureWritableParents(vfs: ViewFs, p: string, owner: string, rel: string): Promise<void> {
  const parentRel = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
  const dir = wPath(vfs, owner, parentRel);
  try {
    if ((await fsp.stat(dir)).isDirectory()) return;
  } catch {
    /* create below */
  }
  // Copy the view's directory modes where it has them, so permissions look the same after a write.
  const parentView = parentOf(p);
  const pf = await vfs.lookup(parentView).catch(() => null);
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  if (pf?.st) await fsp.chmod(dir, Number(pf.st.mode) & 0o7777).catch(() => {});
}

/** Make the owner's writable sublayer hold `p`, copying it up from below when needed. */
export async function copyUp(vfs: ViewFs, p: string, res: Resolution, f: Found): Promise<string> {
  const owner = res.owner!;
  const rel = vfs.ownerRel(res);
  const dest = wPath(vfs, owner, rel);
  await ensureWritableParents(vfs, p, owner, rel);
  const st = f.st;
  if (!st || st.isDirectory()) {
    await fsp.mkdir(dest, { mode: st ? Number(st.mode) & 0o7777 : 0o755 }).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    });
    return dest;
  }
  if (st.isSymbolicLink()) {
    await fsp.symlink(await fsp.readlink(f.real), dest);
    return dest;
  }
  if (!st.isFile()) fail('EPERM');
  const tmp = path.join(path.dirname(dest), `.strata-copyup-${process.pid}-${baseName(dest)}`);
  await fsp.copyFile(f.real, tmp, fs.constants.COPYFILE_FICLONE);
  await fsp.chmod(tmp, Number(st.mode) & 0o7777);
  if (process.getuid?.() === 0) await fsp.lchown(tmp, Number(st.uid), Number(st.gid)).catch(() => {});
  await fsp.utimes(tmp, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9);
  await fsp.rename(tmp, dest);
  return dest;
}

/** The real path to modify for `p`: the base when nothing maps it, else the owner's writable copy. */
export async function writable(vfs: ViewFs, p: string): Promise<{ real: string; res: Resolution; f: Found }> {
  const res = vfs.resolver().resolve(p);
  const f = await vfs.mustFind(p, res);
  if (res.owner === null) {
    if (!f.st) fail('EROFS'); // a synthetic directory has nothing real beneath it
    return { real: f.real, res, f };
  }
  if (vfs.isOwnerWritable(f, res)) return { real: f.real, res, f };
  return { real: await copyUp(vfs, p, res, f), res, f };
}

/** Where a new entry at `p` is created; checks the parent exists in the view. */
export async function createTarget(vfs: ViewFs, p: string): Promise<{ real: string; res: Resolution }> {
  const res = vfs.resolver().resolve(p);
  if (res.hidden) fail('EACCES');
  const parent = await vfs.lookup(parentOf(p));
  if (!parent) fail('ENOENT');
  if (parent!.st && !parent!.st.isDirectory()) fail('ENOTDIR');
  if (res.owner === null) {
    if (!parent!.st) fail('EROFS');
    return { real: vfs.realOf({ kind: 'base', path: p }), res };
  }
  const rel = vfs.ownerRel(res);
  await ensureWritableParents(vfs, p, res.owner, rel);
  return { real: wPath(vfs, res.owner, rel), res };
}
