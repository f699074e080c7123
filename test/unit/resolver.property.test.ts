/**
 * Property tests for the resolver: a seeded generator builds random rule sets, paths, writable marks
 * and listings, and the results are compared with brute-force reference implementations written
 * from the documented semantics (segment arrays instead of string prefixes, declarative rules
 * instead of the production loops).
 */
import assert from 'node:assert/strict';
import {
  Resolution,
  Resolver,
  RuleLayer,
  Source,
  SourceListing,
  WritableMarks,
  byPriority,
  mergeListings,
  sourcesFor,
} from '../../shared/resolver';
import { mulberry32 } from '../prng';

// ---- seeded randomness -------------------------------------------------------------------------

class Gen {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

// Segments chosen so that several share a string prefix ('a'/'ab'/'a.b', 'opt'/'optx').
const VIEW_SEGS = ['a', 'b', 'ab', 'a.b', 'opt', 'optx'];
const REL_SEGS = ['x', 'y', 'xy', 'a'];
const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'Zeta', 'al'];
const PRIORITIES = [-1, 0, 0, 1, 2];

function viewPath(g: Gen, minDepth: number, maxDepth: number): string {
  const d = minDepth + g.int(maxDepth - minDepth + 1);
  const segs: string[] = [];
  for (let i = 0; i < d; i++) segs.push(g.pick(VIEW_SEGS));
  return '/' + segs.join('/');
}

function relPath(g: Gen, maxDepth: number, segPool: readonly string[] = REL_SEGS): string {
  const d = g.int(maxDepth + 1);
  const segs: string[] = [];
  for (let i = 0; i < d; i++) segs.push(g.pick(segPool));
  return segs.join('/');
}

function randomLayers(g: Gen): RuleLayer[] {
  const count = g.int(5);
  const names = g.shuffle(NAMES).slice(0, count);
  return names.map((name) => {
    const originals = new Set<string>();
    const nm = g.int(4);
    for (let i = 0; i < nm * 3 && originals.size < nm; i++) originals.add(viewPath(g, 0, 3));
    const excludes = new Set<string>();
    const ne = g.int(3);
    for (let i = 0; i < ne; i++) excludes.add(viewPath(g, 1, 3));
    const deletes = new Set<string>();
    const nd = g.chance(0.35) ? 1 + g.int(2) : 0;
    for (let i = 0; i < nd; i++) deletes.add(viewPath(g, 1, 3));
    return {
      name,
      priority: g.pick(PRIORITIES),
      mappings: [...originals].map((original) => ({ original, destination: relPath(g, 2) })),
      excludes: [...excludes],
      deletes: [...deletes],
    };
  });
}

function rulePathsOf(layers: readonly RuleLayer[]): string[] {
  return layers.flatMap((l) => [...l.mappings.map((m) => m.original), ...l.excludes, ...l.deletes]);
}

/** A query path: random, or a rule path, one of its children, or its parent (to hit the edges). */
function queryPath(g: Gen, layers: readonly RuleLayer[]): string {
  const rules = rulePathsOf(layers);
  const k = g.int(4);
  if (k === 0 || rules.length === 0) return viewPath(g, 0, 4);
  const r = g.pick(rules);
  if (k === 1) return r;
  if (k === 2) return (r === '/' ? '' : r) + '/' + g.pick(VIEW_SEGS);
  return segs(r).length <= 1 ? '/' : '/' + segs(r).slice(0, -1).join('/');
}

// ---- reference implementations -----------------------------------------------------------------

function segs(p: string): string[] {
  return p === '/' ? [] : p.slice(1).split('/');
}
function relSegs(r: string): string[] {
  return r === '' ? [] : r.split('/');
}
/** Segment-wise prefix test: does `prefix` equal `p` or contain it? */
function covers(prefix: readonly string[], p: readonly string[]): boolean {
  if (prefix.length > p.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== p[i]) return false;
  return true;
}

/** Priority descending, then name ascending — by selection, not by Array.sort. */
function refOrder(layers: readonly RuleLayer[]): RuleLayer[] {
  const rest = [...layers];
  const out: RuleLayer[] = [];
  while (rest.length) {
    let best = 0;
    for (let i = 1; i < rest.length; i++) {
      const a = rest[i];
      const b = rest[best];
      if (a.priority > b.priority || (a.priority === b.priority && a.name < b.name)) best = i;
    }
    out.push(rest.splice(best, 1)[0]);
  }
  return out;
}

function refResolve(layers: readonly RuleLayer[], p: string): Resolution {
  const ps = segs(p);
  const branches: { layer: string; rel: string }[] = [];
  for (const l of refOrder(layers)) {
    if (l.excludes.some((e) => covers(segs(e), ps))) continue;
    if (l.deletes.some((d) => covers(segs(d), ps))) {
      return { branches, base: false, owner: branches.length ? branches[0].layer : null, hidden: branches.length === 0 };
    }
    let best: { depth: number; dest: string } | undefined;
    for (const m of l.mappings) {
      const ms = segs(m.original);
      if (covers(ms, ps) && (!best || ms.length > best.depth)) best = { depth: ms.length, dest: m.destination };
    }
    if (!best) continue;
    branches.push({ layer: l.name, rel: [...relSegs(best.dest), ...ps.slice(best.depth)].join('/') });
  }
  return { branches, base: true, owner: branches.length ? branches[0].layer : null, hidden: false };
}

function refSpecialChildren(layers: readonly RuleLayer[], dir: string): string[] {
  const ds = segs(dir);
  const out = new Set<string>();
  for (const r of rulePathsOf(layers)) {
    const rs = segs(r);
    if (rs.length > ds.length && covers(ds, rs)) out.add(rs[ds.length]);
  }
  return [...out].sort();
}

function refIsMappingAncestor(layers: readonly RuleLayer[], p: string): boolean {
  const ps = segs(p);
  return layers.some((l) =>
    l.mappings.some((m) => {
      const ms = segs(m.original);
      return ms.length > ps.length && covers(ps, ms);
    }),
  );
}

function refSources(res: Resolution, viewPath: string, marks: (l: string) => WritableMarks): Source[] {
  const out: Source[] = [];
  for (const b of res.branches) {
    out.push({ kind: 'writable', layer: b.layer, rel: b.rel });
    const rs = relSegs(b.rel);
    const mk = marks(b.layer);
    const whited = [...mk.whiteouts].some((x) => covers(relSegs(x), rs));
    const opaqueAbove = [...mk.opaque].some((x) => relSegs(x).length < rs.length && covers(relSegs(x), rs));
    if (whited || opaqueAbove) return out;
    out.push({ kind: 'files', layer: b.layer, rel: b.rel });
  }
  if (res.base) out.push({ kind: 'base', path: viewPath });
  return out;
}

/**
 * Declarative overlay merge: find the range of sources that take part (from the first existing one,
 * up to a non-directory (exclusive) or an opaque directory (inclusive)); a name is listed when some
 * source in range holds it and no source above that one whites it out while it is not yet listed by
 * that source or one above.
 */
function refMerge(ls: readonly SourceListing[]): string[] | null {
  const first = ls.findIndex((l) => l.kind !== 'missing');
  if (first < 0 || ls[first].kind === 'nondir') return null;
  let end = ls.length;
  for (let i = first; i < ls.length; i++) {
    const l = ls[i];
    if (l.kind === 'nondir') {
      end = i;
      break;
    }
    if (l.kind === 'dir' && l.opaque) {
      end = i + 1;
      break;
    }
  }
  const inRange: { names: readonly string[]; whiteouts: ReadonlySet<string> }[] = [];
  for (let i = first; i < end; i++) {
    const l = ls[i];
    if (l.kind === 'dir') inRange.push({ names: l.names, whiteouts: l.whiteouts ?? new Set() });
  }
  const heldAtOrAbove = (name: string, j: number) => inRange.slice(0, j + 1).some((s) => s.names.includes(name));
  const out = new Set<string>();
  inRange.forEach((s, i) => {
    for (const name of s.names) {
      const blocked = inRange.slice(0, i).some((u, j) => u.whiteouts.has(name) && !heldAtOrAbove(name, j));
      if (!blocked) out.add(name);
    }
  });
  return [...out].sort();
}

function randomMarks(g: Gen, res: Resolution): Map<string, WritableMarks> {
  const m = new Map<string, WritableMarks>();
  for (const b of res.branches) {
    const whiteouts = new Set<string>();
    const opaque = new Set<string>();
    const prefixes = relSegs(b.rel).map((_, i, a) => a.slice(0, i + 1).join('/'));
    const candidates = ['', ...prefixes, b.rel + (b.rel ? '/' : '') + 'x', b.rel + 'y'];
    if (g.chance(0.3)) whiteouts.add(g.chance(0.7) ? g.pick(candidates) : relPath(g, 3));
    if (g.chance(0.3)) opaque.add(g.chance(0.7) ? g.pick(candidates) : relPath(g, 3));
    m.set(b.layer, { whiteouts, opaque });
  }
  return m;
}

function randomListing(g: Gen): SourceListing {
  const k = g.int(10);
  if (k < 2) return { kind: 'missing' };
  if (k < 3) return { kind: 'nondir' };
  const pool = ['a', 'b', 'c', 'd', 'e'];
  const names = pool.filter(() => g.chance(0.4));
  const listing: { kind: 'dir'; names: string[]; whiteouts?: Set<string>; opaque?: boolean } = { kind: 'dir', names };
  if (g.chance(0.4)) listing.whiteouts = new Set(pool.filter(() => g.chance(0.3)));
  if (g.chance(0.15)) listing.opaque = true;
  return listing;
}

// ---- the properties ----------------------------------------------------------------------------

const CASES = 2000;

describe('resolver: property tests against a reference implementation', () => {
  it(`resolve agrees with the reference and keeps its invariants (${CASES} random rule sets)`, () => {
    const g = new Gen(0x5eed1);
    let mapped = 0;
    let hidden = 0;
    let stopped = 0;
    let multi = 0;
    for (let c = 0; c < CASES; c++) {
      const layers = randomLayers(g);
      const r = new Resolver(layers);
      const order = byPriority(layers).map((l) => l.name);
      assert.deepEqual(
        order,
        refOrder(layers).map((l) => l.name),
        `case ${c}: layer order`,
      );
      assert.deepEqual(
        r.layers.map((l) => l.name),
        order,
        `case ${c}: Resolver.layers order`,
      );
      for (let q = 0; q < 5; q++) {
        const p = queryPath(g, layers);
        const ctx = `case ${c}, path ${p}, layers ${JSON.stringify(layers)}`;
        const got = r.resolve(p);
        assert.deepEqual(got, refResolve(layers, p), ctx);
        // owner is the first branch's layer
        assert.equal(got.owner, got.branches.length ? got.branches[0].layer : null, ctx);
        // branches respect priority order, each layer at most once
        const idx = got.branches.map((b) => order.indexOf(b.layer));
        assert.ok(
          idx.every((i) => i >= 0),
          ctx,
        );
        for (let i = 1; i < idx.length; i++) assert.ok(idx[i - 1] < idx[i], ctx);
        // hidden means nothing claimed the path and the base is not consulted
        if (got.hidden) assert.ok(!got.base && got.branches.length === 0, ctx);
        // the base is dropped only by a delete entry covering the path
        if (!got.base)
          assert.ok(
            layers.some((l) => l.deletes.some((d) => covers(segs(d), segs(p)))),
            ctx,
          );
        // rels are normalized layer paths
        for (const b of got.branches) assert.ok(b.rel === '' || !/^\/|\/$|\/\//.test(b.rel), ctx);
        if (got.branches.length) mapped++;
        if (got.branches.length > 1) multi++;
        if (got.hidden) hidden++;
        if (!got.base && !got.hidden) stopped++;
      }
    }
    // the generator must actually exercise every outcome
    assert.ok(mapped > 1000, `mapped ${mapped}`);
    assert.ok(multi > 200, `multi ${multi}`);
    assert.ok(hidden > 100, `hidden ${hidden}`);
    assert.ok(stopped > 20, `stopped ${stopped}`);
  });

  it(`rulePaths, specialChildren and isMappingAncestor agree with the reference (${CASES} rule sets)`, () => {
    const g = new Gen(0xabcdef);
    let specialSeen = 0;
    let ancestorSeen = 0;
    for (let c = 0; c < CASES; c++) {
      const layers = randomLayers(g);
      const r = new Resolver(layers);
      assert.deepEqual(r.rulePaths, [...new Set(rulePathsOf(layers))].sort(), `case ${c}: rulePaths`);
      for (let q = 0; q < 4; q++) {
        const dir = queryPath(g, layers);
        const ctx = `case ${c}, dir ${dir}, layers ${JSON.stringify(layers)}`;
        const special = r.specialChildren(dir);
        assert.equal(special.length, new Set(special).size, ctx);
        assert.deepEqual([...special].sort(), refSpecialChildren(layers, dir), ctx);
        const anc = r.isMappingAncestor(dir);
        assert.equal(anc, refIsMappingAncestor(layers, dir), ctx);
        if (special.length) specialSeen++;
        if (anc) ancestorSeen++;
      }
    }
    assert.ok(specialSeen > 500, `specialSeen ${specialSeen}`);
    assert.ok(ancestorSeen > 300, `ancestorSeen ${ancestorSeen}`);
  });

  it(`a child that is not a special child resolves like its parent (${CASES} rule sets)`, () => {
    const g = new Gen(0x77777);
    let checked = 0;
    for (let c = 0; c < CASES; c++) {
      const layers = randomLayers(g);
      const r = new Resolver(layers);
      const dir = queryPath(g, layers);
      const special = new Set(r.specialChildren(dir));
      const plain = [...VIEW_SEGS, 'zz'].filter((n) => !special.has(n));
      if (!plain.length) continue;
      const name = g.pick(plain);
      const child = (dir === '/' ? '' : dir) + '/' + name;
      const parent = r.resolve(dir);
      const want: Resolution = {
        ...parent,
        branches: parent.branches.map((b) => ({ layer: b.layer, rel: b.rel === '' ? name : b.rel + '/' + name })),
      };
      assert.deepEqual(r.resolve(child), want, `case ${c}: ${child} under ${dir}, layers ${JSON.stringify(layers)}`);
      checked++;
    }
    assert.ok(checked > 1500, `checked ${checked}`);
  });

  it(`sourcesFor agrees with the reference under random whiteouts and opaque dirs (${CASES} cases)`, () => {
    const g = new Gen(0x50c3);
    let cut = 0;
    let full = 0;
    for (let c = 0; c < CASES; c++) {
      const layers = randomLayers(g);
      const r = new Resolver(layers);
      const p = queryPath(g, layers);
      const res = r.resolve(p);
      const marks = randomMarks(g, res);
      const lookup = (l: string): WritableMarks => {
        const m = marks.get(l);
        assert.ok(m, `marks asked for a layer that is not a branch: ${l}`);
        return m;
      };
      const got = sourcesFor(res, p, lookup);
      const ctx = `case ${c}, path ${p}, res ${JSON.stringify(res)}, marks ${JSON.stringify([...marks].map(([k, v]) => [k, [...v.whiteouts], [...v.opaque]]))}`;
      assert.deepEqual(got, refSources(res, p, lookup), ctx);
      // structural invariants: starts with the owner's writable sublayer; base only at the end
      if (res.owner !== null) assert.deepEqual(got[0], { kind: 'writable', layer: res.owner, rel: res.branches[0].rel }, ctx);
      got.forEach((s, i) => {
        if (s.kind === 'base') assert.equal(i, got.length - 1, ctx);
      });
      const expectedFull = res.branches.length * 2 + (res.base ? 1 : 0);
      if (got.length < expectedFull) cut++;
      else full++;
    }
    assert.ok(cut > 200, `cut ${cut}`);
    assert.ok(full > 200, `full ${full}`);
  });

  it(`mergeListings agrees with a declarative reference (${CASES} cases)`, () => {
    const g = new Gen(0x3e2e);
    let nulls = 0;
    let hiddenByWhiteout = 0;
    for (let c = 0; c < CASES; c++) {
      const n = g.int(5);
      const ls: SourceListing[] = [];
      for (let i = 0; i < n; i++) ls.push(randomListing(g));
      const got = mergeListings(ls);
      const want = refMerge(ls);
      const ctx = `case ${c}: ${JSON.stringify(ls.map((l) => (l.kind === 'dir' ? { ...l, whiteouts: l.whiteouts ? [...l.whiteouts] : undefined } : l)))}`;
      if (want === null) {
        assert.equal(got, null, ctx);
        nulls++;
        continue;
      }
      assert.ok(got, ctx);
      assert.equal(got.length, new Set(got).size, `duplicates, ${ctx}`);
      assert.deepEqual([...got].sort(), want, ctx);
      const union = new Set(ls.flatMap((l) => (l.kind === 'dir' ? l.names : [])));
      if ([...union].some((x) => !got.includes(x))) hiddenByWhiteout++;
    }
    assert.ok(nulls > 100, `nulls ${nulls}`);
    assert.ok(hiddenByWhiteout > 100, `hidden ${hiddenByWhiteout}`);
  });
});
