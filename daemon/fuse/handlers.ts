/**
 * The FUSE operation table for one view. Each handler resolves the path through the view
 * (viewfs.ts), makes the system call(s) on the real place and lets guard() convert the error;
 * writes under a mapping go through copy-up (copyup.ts).
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import type { FuseHandlers } from './native';
import { UTIME_NOW, UTIME_OMIT } from './native';
import { copyUp, createTarget, ensureWritableParents, existsBelowOwner, wPath, writable } from './copyup';
import { FsErr, errno, fail, toErrno, openFd, closeFd, ftruncateFd, fchmodFd, fchownFd, futimesFd, fstatBig } from './syscalls';
import type { ViewFs } from './viewfs';

const { O_RDONLY, O_TRUNC, O_CREAT } = fs.constants;
const O_ACCMODE = 3;

/** Makes guard(): it wraps an async handler so every path ends in exactly one reply and no exception escapes. */
function guardWith(log: (msg: string) => void) {
  return <A extends unknown[], R>(name: string, fn: (...a: A) => Promise<R>, send: (reply: (e: number, v?: R) => void, v: R) => void) => {
    return (...args: [...A, (e: number, v?: R) => void]): void => {
      const reply = args.pop() as (e: number, v?: R) => void;
      let p: Promise<R>;
      try {
        p = fn(...(args as unknown as A));
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (v) => send(reply, v),
        (e) => {
          const n = toErrno(e);
          if (!(e instanceof FsErr) && n === errno.EIO) log(`[viewfs] ${name}(${String(args[0])}) failed: ${(e as Error)?.stack ?? e}`);
          reply(n);
        },
      );
    };
  };
}

export function fuseHandlers(vfs: ViewFs): FuseHandlers {
  const guard = guardWith((msg) => vfs.log(msg));
  const ok = <R>(reply: (e: number, v?: R) => void, v: R) => reply(0, v);
  const done = (reply: (e: number) => void) => reply(0);
  const h = {
    getattr: guard(
      'getattr',
      async (p: string, fd: number) => {
        if (fd >= 0) return vfs.toTuple(await fstatBig(fd));
        const f = await vfs.mustFind(p);
        return vfs.toTuple(f.st);
      },
      ok,
    ),
    access: guard(
      'access',
      async (p: string, mask: number) => {
        const f = await vfs.mustFind(p);
        if (f.st && mask !== fs.constants.F_OK) await fsp.access(f.real, mask);
      },
      done,
    ),
    readdir: guard('readdir', (p: string) => vfs.listing(p), ok),
    open: guard(
      'open',
      async (p: string, flags: number, pid: number) => {
        const wants = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
        const res = vfs.resolver().resolve(p);
        const f = await vfs.mustFind(p, res);
        let real = f.real;
        let layer: string | null = f.source.kind === 'base' ? null : f.source.layer;
        if (wants && res.owner !== null && !vfs.isOwnerWritable(f, res)) {
          real = await copyUp(vfs, p, res, f);
          layer = res.owner;
        }
        if (!f.st) fail('EISDIR');
        const fd = await openFd(real, flags & ~O_CREAT);
        vfs.openFiles.set(fd, { pid, path: p, layer });
        return fd;
      },
      ok,
    ),
    create: guard(
      'create',
      async (p: string, mode: number, flags: number, pid: number) => {
        const { real, res } = await createTarget(vfs, p);
        if (res.owner) await vfs.places.marks(res.owner).removeWhiteout(vfs.ownerRel(res));
        const fd = await openFd(real, flags | O_CREAT, mode);
        vfs.openFiles.set(fd, { pid, path: p, layer: res.owner });
        return fd;
      },
      ok,
    ),
    release: guard(
      'release',
      async (_p: string | null, fd: number) => {
        vfs.openFiles.delete(fd);
        await closeFd(fd);
      },
      done,
    ),
    truncate: guard(
      'truncate',
      async (p: string | null, size: number, fd: number) => {
        if (fd >= 0) return ftruncateFd(fd, size);
        const { real } = await writable(vfs, p!);
        await fsp.truncate(real, size);
      },
      done,
    ),
    unlink: guard(
      'unlink',
      async (p: string) => {
        const res = vfs.resolver().resolve(p);
        const f = await vfs.mustFind(p, res);
        if (!f.st) fail('EISDIR');
        if (f.st!.isDirectory()) fail('EISDIR');
        if (res.owner === null) return fsp.unlink(f.real);
        if (vfs.isOwnerWritable(f, res)) await fsp.unlink(f.real);
        if (await existsBelowOwner(vfs, p, res)) await vfs.places.marks(res.owner).addWhiteout(vfs.ownerRel(res));
      },
      done,
    ),
    rmdir: guard(
      'rmdir',
      async (p: string) => {
        const res = vfs.resolver().resolve(p);
        const f = await vfs.mustFind(p, res);
        if (f.st && !f.st.isDirectory()) fail('ENOTDIR');
        if ((await vfs.listing(p)).length) fail('ENOTEMPTY');
        if (res.owner === null) {
          if (!f.st) fail('EBUSY');
          return fsp.rmdir(f.real);
        }
        const rel = vfs.ownerRel(res);
        const marks = vfs.places.marks(res.owner);
        await fsp.rm(wPath(vfs, res.owner, rel), { recursive: true, force: true });
        marks.dropBelow(rel);
        if (await existsBelowOwner(vfs, p, res)) await marks.addWhiteout(rel);
      },
      done,
    ),
    mkdir: guard(
      'mkdir',
      async (p: string, mode: number) => {
        if (await vfs.lookup(p)) fail('EEXIST');
        const { real, res } = await createTarget(vfs, p);
        await fsp.mkdir(real, { mode });
        if (res.owner) {
          const marks = vfs.places.marks(res.owner);
          const rel = vfs.ownerRel(res);
          // A directory recreated over a deleted one must not show the old content below it.
          if (await marks.removeWhiteout(rel)) await marks.setOpaque(rel);
        }
      },
      done,
    ),
    rename: guard('rename', (from: string, to: string, flags: number) => rename(vfs, from, to, flags), done),
    symlink: guard(
      'symlink',
      async (target: string, p: string) => {
        if (await vfs.lookup(p)) fail('EEXIST');
        const { real, res } = await createTarget(vfs, p);
        if (res.owner) await vfs.places.marks(res.owner).removeWhiteout(vfs.ownerRel(res));
        await fsp.symlink(target, real);
      },
      done,
    ),
    readlink: guard(
      'readlink',
      async (p: string) => {
        const f = await vfs.mustFind(p);
        if (!f.st || !f.st.isSymbolicLink()) fail('EINVAL');
        return fsp.readlink(f.real);
      },
      ok,
    ),
    link: guard(
      'link',
      async (from: string, to: string) => {
        const rf = vfs.resolver().resolve(from);
        const rt = vfs.resolver().resolve(to);
        if (rf.owner !== rt.owner) fail('EXDEV');
        if (await vfs.lookup(to, rt)) fail('EEXIST');
        const { real: src } = await writable(vfs, from);
        const { real: dst } = await createTarget(vfs, to);
        if (rt.owner) await vfs.places.marks(rt.owner).removeWhiteout(vfs.ownerRel(rt));
        await fsp.link(src, dst);
      },
      done,
    ),
    chmod: guard(
      'chmod',
      async (p: string | null, mode: number, fd: number) => {
        if (p === null) return fchmodFd(fd, mode);
        const { real, f } = await writable(vfs, p);
        if (f.st?.isSymbolicLink()) return; // Linux ignores symlink modes
        await fsp.chmod(real, mode);
      },
      done,
    ),
    chown: guard(
      'chown',
      async (p: string | null, uid: number, gid: number, fd: number) => {
        const u = uid === 0xffffffff ? -1 : uid;
        const g = gid === 0xffffffff ? -1 : gid;
        if (p === null) return fchownFd(fd, u, g);
        const { real } = await writable(vfs, p);
        await fsp.lchown(real, u, g);
      },
      done,
    ),
    utimens: guard(
      'utimens',
      async (p: string | null, as: number, an: number, ms: number, mn: number, fd: number) => {
        const target = p === null ? null : await writable(vfs, p);
        const cur = target
          ? await fsp.lstat(target.real)
          : await fstatBig(fd).then((s) => ({ atimeMs: Number(s.atimeNs) / 1e6, mtimeMs: Number(s.mtimeNs) / 1e6 }));
        const pick = (sec: number, nsec: number, currentMs: number): number =>
          nsec === UTIME_OMIT ? currentMs / 1000 : nsec === UTIME_NOW ? Date.now() / 1000 : sec + nsec / 1e9;
        const at = pick(as, an, cur.atimeMs);
        const mt = pick(ms, mn, cur.mtimeMs);
        if (!target) return futimesFd(fd, at, mt);
        if (target.f.st?.isSymbolicLink()) await fsp.lutimes(target.real, at, mt);
        else await fsp.utimes(target.real, at, mt);
      },
      done,
    ),
    statfs: guard(
      'statfs',
      async () => {
        const s = await fsp.statfs(vfs.baseRoot);
        return [s.bsize, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 255];
      },
      ok,
    ),
  };
  return h as unknown as FuseHandlers;
}

async function rename(vfs: ViewFs, from: string, to: string, flags: number): Promise<void> {
  const RENAME_NOREPLACE = 1;
  if (flags & ~RENAME_NOREPLACE) fail('EINVAL'); // RENAME_EXCHANGE / WHITEOUT are not supported
  const rf = vfs.resolver().resolve(from);
  const rt = vfs.resolver().resolve(to);
  if (rf.owner !== rt.owner || rf.hidden || rt.hidden) fail('EXDEV');
  const f = await vfs.mustFind(from, rf);
  if (!f.st) fail('EXDEV');
  const t = await vfs.lookup(to, rt);
  if (t && flags & RENAME_NOREPLACE) fail('EEXIST');
  if (t?.st) {
    if (t.st.isDirectory() && !f.st!.isDirectory()) fail('EISDIR');
    if (!t.st.isDirectory() && f.st!.isDirectory()) fail('ENOTDIR');
    if (t.st.isDirectory() && (await vfs.listing(to)).length) fail('ENOTEMPTY');
  }
  if (rf.owner === null) {
    if (t && !t.st) fail('EXDEV');
    await fsp.rename(f.real, vfs.realOf({ kind: 'base', path: to }));
    return;
  }
  const owner = rf.owner;
  const marks = vfs.places.marks(owner);
  // A directory with content below the writable sublayer cannot move in one step; callers like
  // mv fall back to copy and delete on EXDEV, as with overlayfs.
  if (f.st!.isDirectory() && (!vfs.isOwnerWritable(f, rf) || (await existsBelowOwner(vfs, from, rf)))) fail('EXDEV');
  const src = vfs.isOwnerWritable(f, rf) ? f.real : await copyUp(vfs, from, rf, f);
  const toRel = vfs.ownerRel(rt);
  await ensureWritableParents(vfs, to, owner, toRel);
  const dest = wPath(vfs, owner, toRel);
  if (t && t.st && t.st.isDirectory() && !vfs.isOwnerWritable(t, rt)) {
    await fsp.rm(dest, { recursive: true, force: true });
  }
  await fsp.rename(src, dest);
  const hadWhiteout = await marks.removeWhiteout(toRel);
  if (f.st!.isDirectory() && (hadWhiteout || (t && !vfs.isOwnerWritable(t, rt)))) await marks.setOpaque(toRel);
  if (await existsBelowOwner(vfs, from, rf)) await marks.addWhiteout(vfs.ownerRel(rf));
}
