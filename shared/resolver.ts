/**
 * The pure path-resolution core. No fs, fuse or socket imports: given the active layers' rules, a
 * view path resolves to the chain of places that may hold it. The view server walks that chain in
 * C (daemon/fuse/viewd/resolve.c) from a table compiled from these rules (daemon/fuse/ruletable.ts);
 * a test checks that the two resolve alike.
 *
 * Within one layer, rules apply in this order: an exclude punches a hole (the layer is transparent
 * there), a delete entry hides the path and everything below it, otherwise the longest mapping
 * whose original covers the path redirects it. Across layers, higher priority comes first (ties by
 * name); a mapped path is merged with what lower layers and the base hold, like an overlay.
 */

export interface RuleMapping {
  /** Normalized view path: '/' or '/a/b'. */
  original: string;
  /** Normalized layer-relative path: '' (layer root) or 'a/b'. */
  destination: string;
}

export interface RuleLayer {
  name: string;
  priority: number;
  mappings: RuleMapping[];
  excludes: string[];
  deletes: string[];
}

export interface Branch {
  layer: string;
  /** Path inside the layer (both sublayers), '' for the layer root. */
  rel: string;
}

export interface Resolution {
  /** Layers that may hold the path, highest priority first. */
  branches: Branch[];
  /** Whether the base is consulted after the layers. */
  base: boolean;
  /** The layer whose writable sublayer takes writes; null means writes go to the base. */
  owner: string | null;
  /** A delete entry hid the path before any layer claimed it. */
  hidden: boolean;
}

/** State of one layer's writable sublayer that changes lookups: whiteouts and opaque directories. */
export interface WritableMarks {
  /** Layer-relative paths deleted through the view. */
  whiteouts: ReadonlySet<string>;
  /** Layer-relative directories whose lower content is hidden (recreated after a delete). */
  opaque: ReadonlySet<string>;
}

export type Source =
  { kind: 'writable'; layer: string; rel: string } | { kind: 'files'; layer: string; rel: string } | { kind: 'base'; path: string };

// ---- paths -------------------------------------------------------------------------------------

export class PathError extends Error {}

/** Normalize a view path ('bin/x', '/bin/x/', '/') to '/bin/x'. Refuses '..' and empty segments' tricks. */
export function normalizeViewPath(p: string): string {
  if (typeof p !== 'string' || p.length === 0) throw new PathError('path is empty');
  if (p.includes('\0')) throw new PathError('path contains a NUL byte');
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') throw new PathError(`path "${p}" contains ".."`);
    parts.push(seg);
  }
  return '/' + parts.join('/');
}

/** Normalize a layer-relative destination: '' for the whole layer, else 'a/b'. */
export function normalizeLayerPath(p: string): string {
  if (typeof p !== 'string') throw new PathError('path is not a string');
  if (p.includes('\0')) throw new PathError('path contains a NUL byte');
  if (p !== '/' && p.startsWith('/')) {
    throw new PathError(
      `"${p}" is absolute; a destination is relative to the layer's files (write "${p.replace(/^\/+/, '')}"), and only "/" may name the whole layer`,
    );
  }
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') throw new PathError(`"${p}" contains ".." and would escape the layer`);
    parts.push(seg);
  }
  return parts.join('/');
}

const SLASH = 0x2f; // '/'

/** True when `p` equals `prefix` or lies below it (both normalized view paths). */
export function isUnder(p: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return p === prefix || (p.startsWith(prefix) && p.charCodeAt(prefix.length) === SLASH);
}

/** Layer-relative variant of isUnder ('' is the root). */
export function isUnderRel(rel: string, prefix: string): boolean {
  if (prefix === '') return true;
  return rel === prefix || (rel.startsWith(prefix) && rel.charCodeAt(prefix.length) === SLASH);
}

export function joinRel(base: string, tail: string): string {
  if (base === '') return tail;
  if (tail === '') return base;
  return base + '/' + tail;
}

/** '/a/b' → '/a'; '/a' → '/'. */
export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Every strict ancestor of a view path, nearest first ('/a/b/c' → '/a/b', '/a', '/'). */
export function ancestors(p: string): string[] {
  const out: string[] = [];
  while (p !== '/') {
    p = parentOf(p);
    out.push(p);
  }
  return out;
}

// ---- rules -------------------------------------------------------------------------------------

/** Order layers the way they win: priority descending, then name ascending. */
export function byPriority(layers: readonly RuleLayer[]): RuleLayer[] {
  return [...layers].sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function longestMapping(layer: RuleLayer, p: string): RuleMapping | undefined {
  let best: RuleMapping | undefined;
  for (const m of layer.mappings) {
    if (isUnder(p, m.original) && (!best || m.original.length > best.original.length)) best = m;
  }
  return best;
}

function tailOf(p: string, prefix: string): string {
  if (prefix === '/') return p.slice(1);
  return p.length === prefix.length ? '' : p.slice(prefix.length + 1);
}

/**
 * The compiled rules of the active set. Build one per switch; `resolve` is called on every
 * uncached lookup, so it only scans the (few) active layers' rules.
 */
export class Resolver {
  readonly layers: readonly RuleLayer[];
  /** Every rule path of the active layers, for listing fix-ups and cache invalidation. */
  readonly rulePaths: readonly string[];

  constructor(active: readonly RuleLayer[]) {
    this.layers = byPriority(active);
    const paths = new Set<string>();
    for (const l of this.layers) {
      for (const m of l.mappings) paths.add(m.original);
      for (const e of l.excludes) paths.add(e);
      for (const d of l.deletes) paths.add(d);
    }
    this.rulePaths = [...paths].sort();
  }

  resolve(p: string): Resolution {
    const branches: Branch[] = [];
    let owner: string | null = null;
    for (const layer of this.layers) {
      if (layer.excludes.some((e) => isUnder(p, e))) continue;
      if (layer.deletes.some((d) => isUnder(p, d))) {
        return { branches, base: false, owner, hidden: branches.length === 0 };
      }
      const m = longestMapping(layer, p);
      if (!m) continue;
      branches.push({ layer: layer.name, rel: joinRel(m.destination, tailOf(p, m.original)) });
      if (owner === null) owner = layer.name;
    }
    return { branches, base: true, owner, hidden: false };
  }

  /**
   * Names of children of directory `dir` that some rule touches (the child is a rule path or an
   * ancestor of one). A listing must resolve these one by one; every other child resolves like
   * its parent.
   */
  specialChildren(dir: string): string[] {
    const names = new Set<string>();
    for (const r of this.rulePaths) {
      if (r === dir || !isUnder(r, dir)) continue;
      const tail = tailOf(r, dir);
      names.add(tail.split('/', 1)[0]);
    }
    return [...names];
  }

  /** True when `p` is a strict ancestor of a mapping original: the view shows it as a directory. */
  isMappingAncestor(p: string): boolean {
    for (const l of this.layers) {
      for (const m of l.mappings) {
        if (m.original !== p && isUnder(m.original, p)) return true;
      }
    }
    return false;
  }
}

// ---- sources and merging -----------------------------------------------------------------------

function coveredBy(rel: string, set: ReadonlySet<string>, strict: boolean): boolean {
  if (set.size === 0) return false;
  if (!strict && set.has(rel)) return true;
  let r = rel;
  while (r !== '') {
    const i = r.lastIndexOf('/');
    r = i < 0 ? '' : r.slice(0, i);
    if (set.has(r)) return true;
  }
  return false;
}

/**
 * The places to look for a path, in order: each branch's writable sublayer then its files, then
 * the base. A whiteout (the path or an ancestor deleted through the view) or an opaque ancestor in
 * a writable sublayer ends the chain after that sublayer.
 */
export function sourcesFor(res: Resolution, viewPath: string, marks: (layer: string) => WritableMarks): Source[] {
  const out: Source[] = [];
  for (const b of res.branches) {
    out.push({ kind: 'writable', layer: b.layer, rel: b.rel });
    const mk = marks(b.layer);
    if (coveredBy(b.rel, mk.whiteouts, false) || coveredBy(b.rel, mk.opaque, true)) return out;
    out.push({ kind: 'files', layer: b.layer, rel: b.rel });
  }
  if (res.base) out.push({ kind: 'base', path: viewPath });
  return out;
}

/** What one source holds at a directory path, as read by the I/O side. */
export type SourceListing =
  { kind: 'missing' } | { kind: 'nondir' } | { kind: 'dir'; names: readonly string[]; whiteouts?: ReadonlySet<string>; opaque?: boolean };

/**
 * Merge a directory's listings from its sources (same order as `sourcesFor`). The first existing
 * source decides the type; lower directories add names not already present or whited out; an
 * opaque directory or a non-directory below ends the merge. Returns null when not a directory.
 */
export function mergeListings(listings: readonly SourceListing[]): string[] | null {
  const seen = new Set<string>();
  const hidden = new Set<string>();
  let found = false;
  for (const l of listings) {
    if (l.kind === 'missing') continue;
    if (l.kind === 'nondir') {
      if (!found) return null;
      break;
    }
    found = true;
    for (const n of l.names) if (!hidden.has(n)) seen.add(n);
    if (l.whiteouts) for (const w of l.whiteouts) if (!seen.has(w)) hidden.add(w);
    if (l.opaque) break;
  }
  return found ? [...seen] : null;
}

/** Whiteout marker file names, as in the writable sublayer on disk. */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
