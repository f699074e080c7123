/**
 * FUSE handlers for one view. Each handler: resolve the path with the pure core (resolver.ts),
 * make the system call(s) on the real place, convert the error. Writes under a mapping go to the
 * owning layer's writable sublayer (copy-up first); the base and a layer's files are never
 * modified through a redirected path.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import type { FuseHandlers, StatTuple } from './native';
import { UTIME_NOW, UTIME_OMIT } from './native';
import {
  Resolution,
  Resolver,
  Source,
  SourceListing,
  WHITEOUT_PREFIX,
  ancestors,
  baseName,
  isUnder,
  mergeListings,
  parentOf,
  sourcesFor,
} from '../../shared/resolver';
import { LayerMarks } from './marks';
import { FsErr, errno, fail, toErrno, openFd, closeFd, ftruncateFd, fchmodFd, fchownFd, futimesFd, fstatBig } from './syscalls';

const { O_RDONLY, O_TRUNC, O_CREAT } = fs.constants;
const O_ACCMODE = 3;

export interface LayerPlaces {
  filesDir(layer: string): string;
  writableDir(layer: string): string;
  marks(layer: string): LayerMarks;
}

export interface OpenFile {
  pid: number;
  path: string;
  /** The layer whose file is open, or null for the base. */
  layer: string | null;
}

interface Found {
  source: Source;
  real: string;
  st: fs.BigIntStats | null; // null: a synthetic directory (an ancestor of a mapping)
}

const SYNTHETIC_DIR_MODE = 0o040755;
const MAX_KNOWN = 500_000;

export class ViewFs {
  /** Open fds handed to the kernel, for "who holds files of this layer open". */
  readonly openFiles = new Map<number, OpenFile>();
  /** Paths whose lookups the kernel may have cached under a rule path, for precise invalidation. */
  readonly known = new Set<string>();
  private readonly started = process.hrtime.bigint();

  constructor(
    /** Real path of the base root: /proc/self/fd/N for an in-place view. */
    private readonly baseRoot: string,
    private readonly places: LayerPlaces,
    private readonly resolver: () => Resolver,
    /** View paths under which owners can change (rule paths of every stored layer). */
    private readonly watched: () => readonly string[],
    private readonly log: (msg: string) => void,
  ) {}

  // ---- resolution helpers ----------------------------------------------------------------------

  realOf(s: Source): string {
    switch (s.kind) {
      case 'writable':
        return path.join(this.places.writableDir(s.layer), s.rel);
      case 'files':
        return path.join(this.places.filesDir(s.layer), s.rel);
      // '/.' so that lstat follows /proc/self/fd/N (a symlink) to the shadowed base directory.
      case 'base':
        return s.path === '/' ? this.baseRoot + '/.' : this.baseRoot + s.path;
    }
  }

  private sources(p: string, res: Resolution): Source[] {
    return sourcesFor(res, p, (l) => this.places.marks(l));
  }

  private track(p: string): void {
    if (this.known.size >= MAX_KNOWN) return;
    for (const w of this.watched()) {
      if (isUnder(p, w)) {
        this.known.add(p);
        return;
      }
    }
  }

  async lookup(p: string, res = this.resolver().resolve(p)): Promise<Found | null> {
    this.track(p);
    if (res.hidden) return null;
    for (const s of this.sources(p, res)) {
      const real = this.realOf(s);
      try {
        return { source: s, real, st: await fsp.lstat(real, { bigint: true }) };
      } catch (e) {
        const c = (e as NodeJS.ErrnoException).code;
        if (c !== 'ENOENT' && c !== 'ENOTDIR') throw e;
      }
    }
    if (this.resolver().isMappingAncestor(p)) return { source: { kind: 'base', path: p }, real: '', st: null };
    return null;
  }

  private async mustFind(p: string, res?: Resolution): Promise<Found> {
    const f = await this.lookup(p, res);
    return f ?? fail('ENOENT');
  }

  private isOwnerWritable(f: Found, res: Resolution): boolean {
    return res.owner !== null && f.source.kind === 'writable' && f.source.layer === res.owner;
  }

  private ownerRel(res: Resolution): string {
    return res.branches[0].rel;
  }

  private wPath(layer: string, rel: string): string {
    return path.join(this.places.writableDir(layer), rel);
  }

  /** Anything below the owner's writable sublayer holding the path (needs a whiteout on delete). */
  private async existsBelowOwner(p: string, res: Resolution): Promise<boolean> {
    for (const s of this.sources(p, res)) {
      if (s.kind === 'writable' && s.layer === res.owner) continue;
      try {
        await fsp.lstat(this.realOf(s));
        return true;
      } catch {
        /* keep looking */
      }
    }
    return false;
  }

  /** Create the owner's writable directories down to the parent of `rel`. */
  private async ensureWritableParents(p: string, owner: string, rel: string): Promise<void> {
    const parentRel = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    const dir = this.wPath(owner, parentRel);
    try {
      if ((await fsp.stat(dir)).isDirectory()) return;
    } catch {
      /* create below */
    }
    // Copy the view's directory modes where it has them, so permissions look the same after a write.
    const parentView = parentOf(p);
    const pf = await this.lookup(parentView).catch(() => null);
    await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
    if (pf?.st) await fsp.chmod(dir, Number(pf.st.mode) & 0o7777).catch(() => {});
  }

  /** Make the owner's writable sublayer hold `p`, copying it up from below when needed. */
  private async copyUp(p: string, res: Resolution, f: Found): Promise<string> {
    const owner = res.owner!;
    const rel = this.ownerRel(res);
    const dest = this.wPath(owner, rel);
    await this.ensureWritableParents(p, owner, rel);
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
  private async writable(p: string): Promise<{ real: string; res: Resolution; f: Found }> {
    const res = this.resolver().resolve(p);
    const f = await this.mustFind(p, res);
    if (res.owner === null) {
      if (!f.st) fail('EROFS'); // a synthetic directory has nothing real beneath it
      return { real: f.real, res, f };
    }
    if (this.isOwnerWritable(f, res)) return { real: f.real, res, f };
    return { real: await this.copyUp(p, res, f), res, f };
  }

  /** Where a new entry at `p` is created; checks the parent exists in the view. */
  private async createTarget(p: string): Promise<{ real: string; res: Resolution }> {
    const res = this.resolver().resolve(p);
    if (res.hidden) fail('EACCES');
    const parent = await this.lookup(parentOf(p));
    if (!parent) fail('ENOENT');
    if (parent!.st && !parent!.st.isDirectory()) fail('ENOTDIR');
    if (res.owner === null) {
      if (!parent!.st) fail('EROFS');
      return { real: this.realOf({ kind: 'base', path: p }), res };
    }
    const rel = this.ownerRel(res);
    await this.ensureWritableParents(p, res.owner, rel);
    return { real: this.wPath(res.owner, rel), res };
  }

  async listing(p: string): Promise<string[]> {
    const res = this.resolver().resolve(p);
    if (res.hidden) fail('ENOENT');
    const listings: SourceListing[] = [];
    for (const s of this.sources(p, res)) {
      const real = this.realOf(s);
      try {
        let names = await fsp.readdir(real);
        if (s.kind === 'writable') {
          names = names.filter((n) => !n.startsWith(WHITEOUT_PREFIX) && !n.startsWith('.strata-copyup-'));
          const mk = this.places.marks(s.layer);
          listings.push({ kind: 'dir', names, whiteouts: mk.whitedOutIn(s.rel), opaque: mk.opaque.has(s.rel) });
        } else {
          listings.push({ kind: 'dir', names });
        }
      } catch (e) {
        const c = (e as NodeJS.ErrnoException).code;
        if (c === 'ENOENT') listings.push({ kind: 'missing' });
        else if (c === 'ENOTDIR') listings.push({ kind: 'nondir' });
        else throw e;
      }
    }
    let names = mergeListings(listings);
    const r = this.resolver();
    if (names === null) {
      if (!r.isMappingAncestor(p)) fail(listings.some((l) => l.kind === 'nondir') ? 'ENOTDIR' : 'ENOENT');
      names = [];
    }
    const special = r.specialChildren(p);
    if (special.length) {
      const set = new Set(names);
      for (const n of special) {
        const child = p === '/' ? '/' + n : p + '/' + n;
        if (await this.lookup(child)) set.add(n);
        else set.delete(n);
      }
      names = [...set];
    }
    return names;
  }

  // ---- stat conversion -------------------------------------------------------------------------

  private toTuple(st: fs.BigIntStats | null): StatTuple {
    if (!st) {
      const now = this.started;
      const sec = Number(now / 1_000_000_000n);
      return [SYNTHETIC_DIR_MODE, 0, 0, 4096, 2, 1, 0, 4096, 8, sec, 0, sec, 0, sec, 0];
    }
    const ns = (v: bigint): [number, number] => [Number(v / 1_000_000_000n), Number(v % 1_000_000_000n)];
    const [as, an] = ns(st.atimeNs);
    const [ms, mn] = ns(st.mtimeNs);
    const [cs, cn] = ns(st.ctimeNs);
    return [
      Number(st.mode),
      Number(st.uid),
      Number(st.gid),
      Number(st.size),
      Number(st.nlink),
      Number(st.ino),
      Number(st.rdev),
      Number(st.blksize),
      Number(st.blocks),
      as,
      an,
      ms,
      mn,
      cs,
      cn,
    ];
  }

  // ---- handlers --------------------------------------------------------------------------------

  /** Wrap an async handler so every path ends in exactly one reply and no exception escapes. */
  private guard<A extends unknown[], R>(
    name: string,
    fn: (...a: A) => Promise<R>,
    send: (reply: (e: number, v?: R) => void, v: R) => void,
  ) {
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
          if (!(e instanceof FsErr) && n === errno.EIO)
            this.log(`[viewfs] ${name}(${String(args[0])}) failed: ${(e as Error)?.stack ?? e}`);
          reply(n);
        },
      );
    };
  }

  handlers(): FuseHandlers {
    const ok = <R>(reply: (e: number, v?: R) => void, v: R) => reply(0, v);
    const done = (reply: (e: number) => void) => reply(0);
    const h = {
      getattr: this.guard(
        'getattr',
        async (p: string, fd: number) => {
          if (fd >= 0) return this.toTuple(await fstatBig(fd));
          const f = await this.mustFind(p);
          return this.toTuple(f.st);
        },
        ok,
      ),
      access: this.guard(
        'access',
        async (p: string, mask: number) => {
          const f = await this.mustFind(p);
          if (f.st && mask !== fs.constants.F_OK) await fsp.access(f.real, mask);
        },
        done,
      ),
      readdir: this.guard('readdir', (p: string) => this.listing(p), ok),
      open: this.guard(
        'open',
        async (p: string, flags: number, pid: number) => {
          const wants = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
          const res = this.resolver().resolve(p);
          const f = await this.mustFind(p, res);
          let real = f.real;
          let layer: string | null = f.source.kind === 'base' ? null : f.source.layer;
          if (wants && res.owner !== null && !this.isOwnerWritable(f, res)) {
            real = await this.copyUp(p, res, f);
            layer = res.owner;
          }
          if (!f.st) fail('EISDIR');
          const fd = await openFd(real, flags & ~O_CREAT);
          this.openFiles.set(fd, { pid, path: p, layer });
          return fd;
        },
        ok,
      ),
      create: this.guard(
        'create',
        async (p: string, mode: number, flags: number, pid: number) => {
          const { real, res } = await this.createTarget(p);
          if (res.owner) await this.places.marks(res.owner).removeWhiteout(this.ownerRel(res));
          const fd = await openFd(real, flags | O_CREAT, mode);
          this.openFiles.set(fd, { pid, path: p, layer: res.owner });
          return fd;
        },
        ok,
      ),
      release: this.guard(
        'release',
        async (_p: string | null, fd: number) => {
          this.openFiles.delete(fd);
          await closeFd(fd);
        },
        done,
      ),
      truncate: this.guard(
        'truncate',
        async (p: string | null, size: number, fd: number) => {
          if (fd >= 0) return ftruncateFd(fd, size);
          const { real } = await this.writable(p!);
          await fsp.truncate(real, size);
        },
        done,
      ),
      unlink: this.guard(
        'unlink',
        async (p: string) => {
          const res = this.resolver().resolve(p);
          const f = await this.mustFind(p, res);
          if (!f.st) fail('EISDIR');
          if (f.st!.isDirectory()) fail('EISDIR');
          if (res.owner === null) return fsp.unlink(f.real);
          if (this.isOwnerWritable(f, res)) await fsp.unlink(f.real);
          if (await this.existsBelowOwner(p, res)) await this.places.marks(res.owner).addWhiteout(this.ownerRel(res));
        },
        done,
      ),
      rmdir: this.guard(
        'rmdir',
        async (p: string) => {
          const res = this.resolver().resolve(p);
          const f = await this.mustFind(p, res);
          if (f.st && !f.st.isDirectory()) fail('ENOTDIR');
          if ((await this.listing(p)).length) fail('ENOTEMPTY');
          if (res.owner === null) {
            if (!f.st) fail('EBUSY');
            return fsp.rmdir(f.real);
          }
          const rel = this.ownerRel(res);
          const marks = this.places.marks(res.owner);
          await fsp.rm(this.wPath(res.owner, rel), { recursive: true, force: true });
          marks.dropBelow(rel);
          if (await this.existsBelowOwner(p, res)) await marks.addWhiteout(rel);
        },
        done,
      ),
      mkdir: this.guard(
        'mkdir',
        async (p: string, mode: number) => {
          if (await this.lookup(p)) fail('EEXIST');
          const { real, res } = await this.createTarget(p);
          await fsp.mkdir(real, { mode });
          if (res.owner) {
            const marks = this.places.marks(res.owner);
            const rel = this.ownerRel(res);
            // A directory recreated over a deleted one must not show the old content below it.
            if (await marks.removeWhiteout(rel)) await marks.setOpaque(rel);
          }
        },
        done,
      ),
      rename: this.guard('rename', (from: string, to: string, flags: number) => this.rename(from, to, flags), done),
      symlink: this.guard(
        'symlink',
        async (target: string, p: string) => {
          if (await this.lookup(p)) fail('EEXIST');
          const { real, res } = await this.createTarget(p);
          if (res.owner) await this.places.marks(res.owner).removeWhiteout(this.ownerRel(res));
          await fsp.symlink(target, real);
        },
        done,
      ),
      readlink: this.guard(
        'readlink',
        async (p: string) => {
          const f = await this.mustFind(p);
          if (!f.st || !f.st.isSymbolicLink()) fail('EINVAL');
          return fsp.readlink(f.real);
        },
        ok,
      ),
      link: this.guard(
        'link',
        async (from: string, to: string) => {
          const rf = this.resolver().resolve(from);
          const rt = this.resolver().resolve(to);
          if (rf.owner !== rt.owner) fail('EXDEV');
          if (await this.lookup(to, rt)) fail('EEXIST');
          const { real: src } = await this.writable(from);
          const { real: dst } = await this.createTarget(to);
          if (rt.owner) await this.places.marks(rt.owner).removeWhiteout(this.ownerRel(rt));
          await fsp.link(src, dst);
        },
        done,
      ),
      chmod: this.guard(
        'chmod',
        async (p: string | null, mode: number, fd: number) => {
          if (p === null) return fchmodFd(fd, mode);
          const { real, f } = await this.writable(p);
          if (f.st?.isSymbolicLink()) return; // Linux ignores symlink modes
          await fsp.chmod(real, mode);
        },
        done,
      ),
      chown: this.guard(
        'chown',
        async (p: string | null, uid: number, gid: number, fd: number) => {
          const u = uid === 0xffffffff ? -1 : uid;
          const g = gid === 0xffffffff ? -1 : gid;
          if (p === null) return fchownFd(fd, u, g);
          const { real } = await this.writable(p);
          await fsp.lchown(real, u, g);
        },
        done,
      ),
      utimens: this.guard(
        'utimens',
        async (p: string | null, as: number, an: number, ms: number, mn: number, fd: number) => {
          const target = p === null ? null : await this.writable(p);
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
      statfs: this.guard(
        'statfs',
        async () => {
          const s = await fsp.statfs(this.baseRoot);
          return [s.bsize, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 255];
        },
        ok,
      ),
    };
    return h as unknown as FuseHandlers;
  }

  private async rename(from: string, to: string, flags: number): Promise<void> {
    const RENAME_NOREPLACE = 1;
    if (flags & ~RENAME_NOREPLACE) fail('EINVAL'); // RENAME_EXCHANGE / WHITEOUT are not supported
    const rf = this.resolver().resolve(from);
    const rt = this.resolver().resolve(to);
    if (rf.owner !== rt.owner || rf.hidden || rt.hidden) fail('EXDEV');
    const f = await this.mustFind(from, rf);
    if (!f.st) fail('EXDEV');
    const t = await this.lookup(to, rt);
    if (t && flags & RENAME_NOREPLACE) fail('EEXIST');
    if (t?.st) {
      if (t.st.isDirectory() && !f.st!.isDirectory()) fail('EISDIR');
      if (!t.st.isDirectory() && f.st!.isDirectory()) fail('ENOTDIR');
      if (t.st.isDirectory() && (await this.listing(to)).length) fail('ENOTEMPTY');
    }
    if (rf.owner === null) {
      if (t && !t.st) fail('EXDEV');
      await fsp.rename(f.real, this.realOf({ kind: 'base', path: to }));
      return;
    }
    const owner = rf.owner;
    const marks = this.places.marks(owner);
    // A directory with content below the writable sublayer cannot move in one step; callers like
    // mv fall back to copy and delete on EXDEV, as with overlayfs.
    if (f.st!.isDirectory() && (!this.isOwnerWritable(f, rf) || (await this.existsBelowOwner(from, rf)))) fail('EXDEV');
    const src = this.isOwnerWritable(f, rf) ? f.real : await this.copyUp(from, rf, f);
    const toRel = this.ownerRel(rt);
    await this.ensureWritableParents(to, owner, toRel);
    const dest = this.wPath(owner, toRel);
    if (t && t.st && t.st.isDirectory() && !this.isOwnerWritable(t, rt)) {
      await fsp.rm(dest, { recursive: true, force: true });
    }
    await fsp.rename(src, dest);
    const hadWhiteout = await marks.removeWhiteout(toRel);
    if (f.st!.isDirectory() && (hadWhiteout || (t && !this.isOwnerWritable(t, rt)))) await marks.setOpaque(toRel);
    if (await this.existsBelowOwner(from, rf)) await marks.addWhiteout(this.ownerRel(rf));
  }

  /** Who holds files of these layers open (for a safe deactivate). */
  holders(layers: ReadonlySet<string>): OpenFile[] {
    return [...this.openFiles.values()].filter((o) => o.layer !== null && layers.has(o.layer));
  }

  /**
   * Paths to invalidate in the kernel after the owners of `prefixes` changed: each prefix, its
   * ancestors (their listings change), every path under it the kernel may cache, and the root
   * entry above each of those (dropping a root entry prunes the kernel's cached names below it,
   * including names cached as missing).
   */
  invalidationSet(prefixes: readonly string[]): string[] {
    const out = new Set<string>();
    const add = (p: string): void => {
      out.add(p);
      const slash = p.indexOf('/', 1);
      out.add(slash < 0 ? p : p.slice(0, slash));
    };
    for (const pre of prefixes) {
      add(pre);
      for (const a of ancestors(pre)) out.add(a);
    }
    for (const k of this.known) {
      if (prefixes.some((pre) => isUnder(k, pre))) add(k);
    }
    // Deepest first: inodes are invalidated before the root entries above them are dropped.
    return [...out].sort((a, b) => b.length - a.length);
  }
}
