/**
 * Unit tests for the overlay side of the resolver: sourcesFor (the lookup chain with whiteouts and
 * opaque directories) and mergeListings (overlay-style directory listing merge).
 */
import assert from 'node:assert/strict';
import {
  OPAQUE_MARKER,
  Resolution,
  Resolver,
  Source,
  SourceListing,
  WHITEOUT_PREFIX,
  WritableMarks,
  mergeListings,
  sourcesFor,
} from '../../shared/resolver';

const NO_MARKS: WritableMarks = { whiteouts: new Set(), opaque: new Set() };

function marksOf(table: Record<string, { whiteouts?: string[]; opaque?: string[] }>): (layer: string) => WritableMarks {
  return (l) => {
    const t = table[l];
    if (!t) return NO_MARKS;
    return { whiteouts: new Set(t.whiteouts ?? []), opaque: new Set(t.opaque ?? []) };
  };
}

function w(layer: string, rel: string): Source {
  return { kind: 'writable', layer, rel };
}
function f(layer: string, rel: string): Source {
  return { kind: 'files', layer, rel };
}
function base(path: string): Source {
  return { kind: 'base', path };
}

function dir(names: string[], extra: { whiteouts?: string[]; opaque?: boolean } = {}): SourceListing {
  return {
    kind: 'dir',
    names,
    ...(extra.whiteouts ? { whiteouts: new Set(extra.whiteouts) } : {}),
    ...(extra.opaque !== undefined ? { opaque: extra.opaque } : {}),
  };
}
const MISSING: SourceListing = { kind: 'missing' };
const NONDIR: SourceListing = { kind: 'nondir' };

function merged(listings: SourceListing[]): string[] | null {
  const out = mergeListings(listings);
  return out === null ? null : [...out].sort();
}

describe('resolver: sourcesFor', () => {
  const one: Resolution = { branches: [{ layer: 'L', rel: 't/bin' }], base: true, owner: 'L', hidden: false };
  const two: Resolution = {
    branches: [
      { layer: 'A', rel: 'a/x' },
      { layer: 'B', rel: 'b/x' },
    ],
    base: true,
    owner: 'A',
    hidden: false,
  };

  it('is just the base for a pass-through path', () => {
    assert.deepEqual(
      sourcesFor({ branches: [], base: true, owner: null, hidden: false }, '/usr/bin', () => NO_MARKS),
      [base('/usr/bin')],
    );
  });

  it('is empty for a hidden path', () => {
    assert.deepEqual(
      sourcesFor({ branches: [], base: false, owner: null, hidden: true }, '/gone', () => NO_MARKS),
      [],
    );
  });

  it('lists writable then files for one branch, then the base (with the view path, not the rel)', () => {
    assert.deepEqual(
      sourcesFor(one, '/opt/t/bin', () => NO_MARKS),
      [w('L', 't/bin'), f('L', 't/bin'), base('/opt/t/bin')],
    );
  });

  it('lists every branch in order, each writable before its files', () => {
    assert.deepEqual(
      sourcesFor(two, '/x', () => NO_MARKS),
      [w('A', 'a/x'), f('A', 'a/x'), w('B', 'b/x'), f('B', 'b/x'), base('/x')],
    );
  });

  it('leaves out the base when a lower delete stopped the chain', () => {
    const res: Resolution = { ...two, base: false };
    assert.deepEqual(
      sourcesFor(res, '/x', () => NO_MARKS),
      [w('A', 'a/x'), f('A', 'a/x'), w('B', 'b/x'), f('B', 'b/x')],
    );
  });

  it('asks for the marks of each branch layer in order', () => {
    const asked: string[] = [];
    sourcesFor(two, '/x', (l) => {
      asked.push(l);
      return NO_MARKS;
    });
    assert.deepEqual(asked, ['A', 'B']);
  });

  it('stops after the writable sublayer when the path itself is whited out', () => {
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marksOf({ L: { whiteouts: ['t/bin'] } })), [w('L', 't/bin')]);
  });

  it('stops after the writable sublayer when an ancestor is whited out', () => {
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marksOf({ L: { whiteouts: ['t'] } })), [w('L', 't/bin')]);
    const deep: Resolution = { branches: [{ layer: 'L', rel: 'a/b/c/d' }], base: true, owner: 'L', hidden: false };
    assert.deepEqual(sourcesFor(deep, '/v', marksOf({ L: { whiteouts: ['a/b'] } })), [w('L', 'a/b/c/d')]);
  });

  it('stops when the whole layer root is whited out', () => {
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marksOf({ L: { whiteouts: [''] } })), [w('L', 't/bin')]);
  });

  it('ignores whiteouts on descendants, siblings and prefix-sharing names', () => {
    const marks = marksOf({ L: { whiteouts: ['t/bin/x', 't/bi', 't/binaries', 't/lib', 'tt', 'x/t/bin'] } });
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marks), [w('L', 't/bin'), f('L', 't/bin'), base('/opt/t/bin')]);
  });

  it('does NOT stop when the path itself is opaque (only strict ancestors count)', () => {
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marksOf({ L: { opaque: ['t/bin'] } })), [
      w('L', 't/bin'),
      f('L', 't/bin'),
      base('/opt/t/bin'),
    ]);
  });

  it('stops after the writable sublayer when a strict ancestor is opaque', () => {
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marksOf({ L: { opaque: ['t'] } })), [w('L', 't/bin')]);
    const deep: Resolution = { branches: [{ layer: 'L', rel: 'a/b/c/d' }], base: true, owner: 'L', hidden: false };
    assert.deepEqual(sourcesFor(deep, '/v', marksOf({ L: { opaque: ['a'] } })), [w('L', 'a/b/c/d')]);
    assert.deepEqual(sourcesFor(deep, '/v', marksOf({ L: { opaque: ['a/b/c'] } })), [w('L', 'a/b/c/d')]);
  });

  it("treats an opaque layer root '' as an ancestor of everything but itself", () => {
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marksOf({ L: { opaque: [''] } })), [w('L', 't/bin')]);
    const root: Resolution = { branches: [{ layer: 'L', rel: '' }], base: true, owner: 'L', hidden: false };
    assert.deepEqual(sourcesFor(root, '/opt/t', marksOf({ L: { opaque: [''] } })), [w('L', ''), f('L', ''), base('/opt/t')]);
  });

  it('ignores opaque descendants and prefix-sharing names', () => {
    const marks = marksOf({ L: { opaque: ['t/bin/sub', 't/bi', 'tt', 't/binx'] } });
    assert.deepEqual(sourcesFor(one, '/opt/t/bin', marks), [w('L', 't/bin'), f('L', 't/bin'), base('/opt/t/bin')]);
  });

  it("for a branch at the layer root, only a whiteout of '' itself stops the chain", () => {
    const root: Resolution = { branches: [{ layer: 'L', rel: '' }], base: true, owner: 'L', hidden: false };
    assert.deepEqual(sourcesFor(root, '/r', marksOf({ L: { whiteouts: ['x'] } })), [w('L', ''), f('L', ''), base('/r')]);
    assert.deepEqual(sourcesFor(root, '/r', marksOf({ L: { whiteouts: [''] } })), [w('L', '')]);
  });

  it('applies marks per layer: a whiteout in the second branch keeps the first branch entirely', () => {
    assert.deepEqual(sourcesFor(two, '/x', marksOf({ B: { whiteouts: ['b/x'] } })), [w('A', 'a/x'), f('A', 'a/x'), w('B', 'b/x')]);
    assert.deepEqual(sourcesFor(two, '/x', marksOf({ B: { opaque: ['b'] } })), [w('A', 'a/x'), f('A', 'a/x'), w('B', 'b/x')]);
  });

  it("matches marks against the branch's own rel, not another layer's", () => {
    // 'b/x' is whited out in A, but A's rel is 'a/x'; B's marks are clean.
    assert.deepEqual(sourcesFor(two, '/x', marksOf({ A: { whiteouts: ['b/x', 'b'] }, B: { whiteouts: ['a/x', 'a'] } })), [
      w('A', 'a/x'),
      f('A', 'a/x'),
      w('B', 'b/x'),
      f('B', 'b/x'),
      base('/x'),
    ]);
  });

  it('a whiteout in the first branch hides lower layers and the base too', () => {
    assert.deepEqual(sourcesFor(two, '/x', marksOf({ A: { whiteouts: ['a/x'] } })), [w('A', 'a/x')]);
  });

  it('works end to end with a Resolver', () => {
    const r = new Resolver([
      { name: 'hi', priority: 2, mappings: [{ original: '/opt', destination: 'o' }], excludes: [], deletes: [] },
      { name: 'lo', priority: 1, mappings: [{ original: '/', destination: '' }], excludes: [], deletes: [] },
    ]);
    const p = '/opt/tool/bin';
    assert.deepEqual(
      sourcesFor(r.resolve(p), p, () => NO_MARKS),
      [w('hi', 'o/tool/bin'), f('hi', 'o/tool/bin'), w('lo', 'opt/tool/bin'), f('lo', 'opt/tool/bin'), base(p)],
    );
    assert.deepEqual(sourcesFor(r.resolve(p), p, marksOf({ lo: { opaque: ['opt/tool'] } })), [
      w('hi', 'o/tool/bin'),
      f('hi', 'o/tool/bin'),
      w('lo', 'opt/tool/bin'),
    ]);
  });
});

describe('resolver: mergeListings', () => {
  it('returns null for no sources', () => {
    assert.equal(mergeListings([]), null);
  });

  it('returns null when every source is missing', () => {
    assert.equal(mergeListings([MISSING]), null);
    assert.equal(mergeListings([MISSING, MISSING, MISSING]), null);
  });

  it('returns null when the first existing source is not a directory', () => {
    assert.equal(mergeListings([NONDIR]), null);
    assert.equal(mergeListings([NONDIR, dir(['a'])]), null);
    assert.equal(mergeListings([MISSING, NONDIR, dir(['a'])]), null);
  });

  it('returns the names of a single directory', () => {
    assert.deepEqual(merged([dir(['b', 'a'])]), ['a', 'b']);
  });

  it('returns an empty list (not null) for an empty directory', () => {
    assert.deepEqual(mergeListings([dir([])]), []);
    assert.deepEqual(mergeListings([MISSING, dir([])]), []);
  });

  it('skips missing sources before and between directories', () => {
    assert.deepEqual(merged([MISSING, dir(['a']), MISSING, dir(['b'])]), ['a', 'b']);
  });

  it('unions names without duplicates', () => {
    const out = mergeListings([dir(['a', 'b']), dir(['b', 'c']), dir(['c', 'a', 'd'])]);
    assert.ok(out);
    assert.equal(out.length, new Set(out).size);
    assert.deepEqual([...out].sort(), ['a', 'b', 'c', 'd']);
  });

  it('keeps upper names first (insertion order)', () => {
    assert.deepEqual(mergeListings([dir(['z', 'y']), dir(['a', 'z'])]), ['z', 'y', 'a']);
  });

  it('stops merging at a non-directory below a directory', () => {
    assert.deepEqual(merged([dir(['a']), NONDIR, dir(['b'])]), ['a']);
    assert.deepEqual(merged([dir(['a']), MISSING, NONDIR, dir(['b'])]), ['a']);
    assert.deepEqual(merged([dir(['a']), dir(['b']), NONDIR, dir(['c'])]), ['a', 'b']);
  });

  it('hides lower names that an upper source whites out', () => {
    assert.deepEqual(merged([dir(['a'], { whiteouts: ['b'] }), dir(['b', 'c'])]), ['a', 'c']);
  });

  it('keeps a whiteout effective through several lower sources', () => {
    assert.deepEqual(merged([dir([], { whiteouts: ['x'] }), dir(['y']), dir(['x', 'z']), dir(['x'])]), ['y', 'z']);
  });

  it('does not hide a name present in the same source as the whiteout', () => {
    assert.deepEqual(merged([dir(['b'], { whiteouts: ['b'] }), dir(['b', 'c'])]), ['b', 'c']);
  });

  it('does not hide a name present in an upper source', () => {
    assert.deepEqual(merged([dir(['x']), dir([], { whiteouts: ['x'] }), dir(['x', 'y'])]), ['x', 'y']);
  });

  it('lets a middle whiteout hide only what lies below it', () => {
    assert.deepEqual(merged([dir(['a']), dir(['b'], { whiteouts: ['c'] }), dir(['c', 'd'])]), ['a', 'b', 'd']);
  });

  it('does not let a lower whiteout hide upper names', () => {
    assert.deepEqual(merged([dir(['a', 'b']), dir([], { whiteouts: ['a'] })]), ['a', 'b']);
  });

  it('whiteouts of names nobody has change nothing', () => {
    assert.deepEqual(merged([dir(['a'], { whiteouts: ['q'] }), dir(['b'])]), ['a', 'b']);
  });

  it('stops at an opaque directory (its own names count, lower names do not)', () => {
    assert.deepEqual(merged([dir(['a'], { opaque: true }), dir(['b'])]), ['a']);
    assert.deepEqual(merged([dir(['a']), dir(['b'], { opaque: true }), dir(['c'])]), ['a', 'b']);
    assert.deepEqual(merged([dir([], { opaque: true }), dir(['b'])]), []);
  });

  it('treats opaque: false like no flag', () => {
    assert.deepEqual(merged([dir(['a'], { opaque: false }), dir(['b'])]), ['a', 'b']);
  });

  it('an opaque directory with whiteouts still lists its own names', () => {
    assert.deepEqual(merged([dir(['a', 'b'], { opaque: true, whiteouts: ['b', 'c'] }), dir(['c'])]), ['a', 'b']);
  });

  it('exposes the on-disk marker names', () => {
    assert.equal(WHITEOUT_PREFIX, '.wh.');
    assert.equal(OPAQUE_MARKER, '.wh..wh..opq');
    assert.ok(OPAQUE_MARKER.startsWith(WHITEOUT_PREFIX));
  });
});
