/**
 * One view as the FUSE handlers (handlers.ts) see it: a view path resolved with the pure core
 * (resolver.ts) to the real places that may hold it, looked up and listed there, and its stat
 * converted for the kernel. It also tracks the fds handed out and the paths the kernel may cache,
 * for deactivate and invalidation.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import type { StatTuple } from './native';
import {
  Resolution,
  Resolver,
  Source,
  SourceListing,
  WHITEOUT_PREFIX,
  ancestors,
  isUnder,
  mergeListings,
  sourcesFor,
} from '../../shared/resolver';
import { LayerMarks } from './marks';
import { fail } from './syscalls';

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

export interface Found {
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
    readonly baseRoot: string,
    readonly places: LayerPlaces,
    readonly resolver: () => Resolver,
    /** View paths under which owners can change (rule paths of every stored layer). */
    private readonly watched: () => readonly string[],
    readonly log: (msg: string) => void,
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

  sources(p: string, res: Resolution): Source[] {
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

  async mustFind(p: string, res?: Resolution): Promise<Found> {
    const f = await this.lookup(p, res);
    return f ?? fail('ENOENT');
  }

  isOwnerWritable(f: Found, res: Resolution): boolean {
    return res.owner !== null && f.source.kind === 'writable' && f.source.layer === res.owner;
  }

  ownerRel(res: Resolution): string {
    return res.branches[0].rel;
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

  toTuple(st: fs.BigIntStats | null): StatTuple {
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
