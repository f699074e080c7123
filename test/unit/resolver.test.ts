/**
 * Unit tests for the pure path-resolution core (shared/resolver.ts): path helpers, layer ordering,
 * and Resolver.resolve / specialChildren / isMappingAncestor / rulePaths.
 */
import assert from 'node:assert/strict';
import {
  PathError,
  Resolution,
  Resolver,
  RuleLayer,
  ancestors,
  baseName,
  byPriority,
  isUnder,
  isUnderRel,
  joinRel,
  normalizeLayerPath,
  normalizeViewPath,
  parentOf,
} from '../../shared/resolver';

interface LayerOpts {
  map?: Record<string, string>;
  excludes?: string[];
  deletes?: string[];
}

function layer(name: string, priority: number, o: LayerOpts = {}): RuleLayer {
  return {
    name,
    priority,
    mappings: Object.entries(o.map ?? {}).map(([original, destination]) => ({ original, destination })),
    excludes: o.excludes ?? [],
    deletes: o.deletes ?? [],
  };
}

const PASS: Resolution = { branches: [], base: true, owner: null, hidden: false };
const HIDDEN: Resolution = { branches: [], base: false, owner: null, hidden: true };

describe('resolver: path helpers', () => {
  describe('normalizeViewPath', () => {
    const cases: Array<[string, string]> = [
      ['/', '/'],
      ['//', '/'],
      ['.', '/'],
      ['/.', '/'],
      ['bin/x', '/bin/x'],
      ['/bin/x/', '/bin/x'],
      ['//bin//x//', '/bin/x'],
      ['/./bin/./x/.', '/bin/x'],
      ['usr', '/usr'],
      ['/...', '/...'],
      ['/a..b/..c/d..', '/a..b/..c/d..'],
      ['/.hidden/x', '/.hidden/x'],
      ['/with space/é', '/with space/é'],
    ];
    for (const [input, want] of cases) {
      it(`normalizes ${JSON.stringify(input)} to ${JSON.stringify(want)}`, () => {
        assert.equal(normalizeViewPath(input), want);
      });
    }

    it('is idempotent on its own output', () => {
      for (const [input] of cases) {
        const once = normalizeViewPath(input);
        assert.equal(normalizeViewPath(once), once);
      }
    });

    it('refuses the empty string', () => {
      assert.throws(
        () => normalizeViewPath(''),
        (e: unknown) => e instanceof PathError && /empty/.test((e as Error).message),
      );
    });

    for (const bad of ['..', '/..', '/a/..', '/a/../b', '../a', 'a/b/../../..']) {
      it(`refuses ".." in ${JSON.stringify(bad)}`, () => {
        assert.throws(
          () => normalizeViewPath(bad),
          (e: unknown) => e instanceof PathError && (e as Error).message.includes('".."'),
        );
      });
    }

    it('refuses a NUL byte', () => {
      assert.throws(
        () => normalizeViewPath('/a\0b'),
        (e: unknown) => e instanceof PathError && /NUL/.test((e as Error).message),
      );
    });

    it('refuses a non-string with a PathError', () => {
      assert.throws(() => normalizeViewPath(undefined as unknown as string), PathError);
      assert.throws(() => normalizeViewPath(42 as unknown as string), PathError);
    });
  });

  describe('normalizeLayerPath', () => {
    const cases: Array<[string, string]> = [
      ['', ''],
      ['/', ''],
      ['.', ''],
      ['./', ''],
      ['a', 'a'],
      ['a/b', 'a/b'],
      ['a/b/', 'a/b'],
      ['a//b', 'a/b'],
      ['./a/./b/.', 'a/b'],
      ['...', '...'],
      ['a..b', 'a..b'],
    ];
    for (const [input, want] of cases) {
      it(`normalizes ${JSON.stringify(input)} to ${JSON.stringify(want)}`, () => {
        assert.equal(normalizeLayerPath(input), want);
      });
    }

    for (const abs of ['/usr', '/a/b', '/etc/', '/.']) {
      it(`refuses the absolute destination ${JSON.stringify(abs)} and suggests the relative spelling`, () => {
        assert.throws(
          () => normalizeLayerPath(abs),
          (e: unknown) =>
            e instanceof PathError &&
            /absolute/.test((e as Error).message) &&
            (e as Error).message.includes(`"${abs.replace(/^\/+/, '')}"`),
        );
      });
    }

    for (const bad of ['..', '../x', 'a/..', 'a/../../b', './..']) {
      it(`refuses ${JSON.stringify(bad)} as escaping the layer`, () => {
        assert.throws(
          () => normalizeLayerPath(bad),
          (e: unknown) => e instanceof PathError && /escape/.test((e as Error).message),
        );
      });
    }

    it('refuses a NUL byte', () => {
      assert.throws(
        () => normalizeLayerPath('a\0'),
        (e: unknown) => e instanceof PathError && /NUL/.test((e as Error).message),
      );
    });

    it('refuses a non-string', () => {
      assert.throws(() => normalizeLayerPath(null as unknown as string), PathError);
    });
  });

  describe('isUnder', () => {
    const yes: Array<[string, string]> = [
      ['/', '/'],
      ['/a', '/'],
      ['/a/b/c', '/'],
      ['/a', '/a'],
      ['/a/b', '/a'],
      ['/a/b/c', '/a/b'],
      ['/opt/tool/bin', '/opt/tool'],
    ];
    const no: Array<[string, string]> = [
      ['/', '/a'],
      ['/ab', '/a'],
      ['/opt/toolbox', '/opt/tool'],
      ['/opt/toolbox/bin', '/opt/tool'],
      ['/opt/too', '/opt/tool'],
      ['/a', '/a/b'],
      ['/b/a', '/a'],
      ['/a.b', '/a'],
      ['/a-b/c', '/a'],
    ];
    for (const [p, prefix] of yes) it(`${p} is under ${prefix}`, () => assert.equal(isUnder(p, prefix), true));
    for (const [p, prefix] of no) it(`${p} is not under ${prefix}`, () => assert.equal(isUnder(p, prefix), false));
  });

  describe('isUnderRel', () => {
    const yes: Array<[string, string]> = [
      ['', ''],
      ['a', ''],
      ['a/b', ''],
      ['a', 'a'],
      ['a/b', 'a'],
      ['tool/bin/x', 'tool/bin'],
    ];
    const no: Array<[string, string]> = [
      ['', 'a'],
      ['ab', 'a'],
      ['toolbox', 'tool'],
      ['toolbox/x', 'tool'],
      ['a', 'a/b'],
      ['b/a', 'a'],
    ];
    for (const [p, prefix] of yes)
      it(`${JSON.stringify(p)} is under ${JSON.stringify(prefix)}`, () => assert.equal(isUnderRel(p, prefix), true));
    for (const [p, prefix] of no)
      it(`${JSON.stringify(p)} is not under ${JSON.stringify(prefix)}`, () => assert.equal(isUnderRel(p, prefix), false));
  });

  describe('joinRel', () => {
    it('joins with the layer root and empty tails', () => {
      assert.equal(joinRel('', ''), '');
      assert.equal(joinRel('', 'a/b'), 'a/b');
      assert.equal(joinRel('a', ''), 'a');
      assert.equal(joinRel('a/b', 'c'), 'a/b/c');
    });
  });

  describe('parentOf / baseName / ancestors', () => {
    it('parentOf climbs one level and stops at the root', () => {
      assert.equal(parentOf('/a/b/c'), '/a/b');
      assert.equal(parentOf('/a/b'), '/a');
      assert.equal(parentOf('/a'), '/');
      assert.equal(parentOf('/'), '/');
    });

    it('baseName returns the last segment', () => {
      assert.equal(baseName('/a/b/c.txt'), 'c.txt');
      assert.equal(baseName('/a'), 'a');
      assert.equal(baseName('/'), '');
    });

    it('ancestors lists strict ancestors nearest first', () => {
      assert.deepEqual(ancestors('/a/b/c'), ['/a/b', '/a', '/']);
      assert.deepEqual(ancestors('/a'), ['/']);
      assert.deepEqual(ancestors('/'), []);
    });
  });

  describe('byPriority', () => {
    it('sorts by priority descending, then name ascending, without mutating its input', () => {
      const input = [layer('b', 1), layer('a', 1), layer('z', 5), layer('m', -3), layer('c', 5), layer('n', 0)];
      const before = input.map((l) => l.name);
      const out = byPriority(input);
      assert.deepEqual(
        out.map((l) => l.name),
        ['c', 'z', 'a', 'b', 'n', 'm'],
      );
      assert.deepEqual(
        input.map((l) => l.name),
        before,
      );
      assert.notEqual(out, input);
    });

    it('breaks ties by code-unit order of names (uppercase before lowercase, digits first)', () => {
      const out = byPriority([layer('alpha', 7), layer('Zed', 7), layer('9lives', 7), layer('al', 7)]);
      assert.deepEqual(
        out.map((l) => l.name),
        ['9lives', 'Zed', 'al', 'alpha'],
      );
    });

    it('handles an empty list', () => {
      assert.deepEqual(byPriority([]), []);
    });
  });
});

describe('resolver: Resolver.resolve', () => {
  describe('with no active layers', () => {
    const r = new Resolver([]);
    for (const p of ['/', '/usr', '/usr/bin/gcc', '/opt/tool/x']) {
      it(`passes ${p} through to the base`, () => assert.deepEqual(r.resolve(p), PASS));
    }
    it('has no rule paths and no special children', () => {
      assert.deepEqual(r.rulePaths, []);
      assert.deepEqual(r.specialChildren('/'), []);
      assert.equal(r.isMappingAncestor('/'), false);
      assert.deepEqual(r.layers, []);
    });
  });

  describe('with layers that have no rule covering the path', () => {
    const r = new Resolver([layer('empty', 100), layer('other', 50, { map: { '/opt/other': 'o' } })]);
    it('passes the path through', () => {
      assert.deepEqual(r.resolve('/usr/bin'), PASS);
      assert.deepEqual(r.resolve('/opt'), PASS);
      assert.deepEqual(r.resolve('/'), PASS);
    });
  });

  describe('single mapping of a directory', () => {
    const r = new Resolver([layer('gcc13', 100, { map: { '/opt/gcc': 'gcc-13' } })]);
    it('maps the directory itself to the destination', () => {
      assert.deepEqual(r.resolve('/opt/gcc'), { branches: [{ layer: 'gcc13', rel: 'gcc-13' }], base: true, owner: 'gcc13', hidden: false });
    });
    it('maps paths below it to destination + rest of path', () => {
      assert.deepEqual(r.resolve('/opt/gcc/bin/gcc'), {
        branches: [{ layer: 'gcc13', rel: 'gcc-13/bin/gcc' }],
        base: true,
        owner: 'gcc13',
        hidden: false,
      });
    });
    it('leaves the parent, siblings and prefix-sharing names alone', () => {
      assert.deepEqual(r.resolve('/opt'), PASS);
      assert.deepEqual(r.resolve('/opt/gc'), PASS);
      assert.deepEqual(r.resolve('/opt/gcc13'), PASS);
      assert.deepEqual(r.resolve('/opt/gcc-old/bin'), PASS);
      assert.deepEqual(r.resolve('/usr/opt/gcc'), PASS);
    });
  });

  describe('single mapping of a file', () => {
    const r = new Resolver([layer('conf', 100, { map: { '/etc/tool.conf': 'etc/tool-v2.conf' } })]);
    it('maps the file to its destination', () => {
      assert.deepEqual(r.resolve('/etc/tool.conf'), {
        branches: [{ layer: 'conf', rel: 'etc/tool-v2.conf' }],
        base: true,
        owner: 'conf',
        hidden: false,
      });
    });
    it('does not map a file whose name merely starts with the mapped one', () => {
      assert.deepEqual(r.resolve('/etc/tool.conf.bak'), PASS);
      assert.deepEqual(r.resolve('/etc/tool'), PASS);
      assert.deepEqual(r.resolve('/etc'), PASS);
    });
  });

  describe('mapping onto the layer root', () => {
    const r = new Resolver([layer('tool', 100, { map: { '/opt/tool': '' } })]);
    it("maps the original to '' and below it to the bare rest", () => {
      assert.deepEqual(r.resolve('/opt/tool').branches, [{ layer: 'tool', rel: '' }]);
      assert.deepEqual(r.resolve('/opt/tool/bin/run').branches, [{ layer: 'tool', rel: 'bin/run' }]);
    });
  });

  describe("whole-tree overlay '/' → ''", () => {
    const r = new Resolver([layer('all', 100, { map: { '/': '' } })]);
    it("maps '/' to the layer root", () => {
      assert.deepEqual(r.resolve('/'), { branches: [{ layer: 'all', rel: '' }], base: true, owner: 'all', hidden: false });
    });
    it('maps every path to the same relative path', () => {
      for (const p of ['/a', '/usr/bin/gcc', '/x/y/z/w']) {
        assert.deepEqual(r.resolve(p), { branches: [{ layer: 'all', rel: p.slice(1) }], base: true, owner: 'all', hidden: false });
      }
    });
    it("has '/' as its only rule path and is never a strict mapping ancestor", () => {
      assert.deepEqual(r.rulePaths, ['/']);
      assert.equal(r.isMappingAncestor('/'), false);
      assert.deepEqual(r.specialChildren('/'), []);
    });
  });

  describe("'/' mapped to a subdirectory", () => {
    const r = new Resolver([layer('root', 100, { map: { '/': 'rootfs' } })]);
    it('prefixes every path with the destination', () => {
      assert.deepEqual(r.resolve('/').branches, [{ layer: 'root', rel: 'rootfs' }]);
      assert.deepEqual(r.resolve('/etc/passwd').branches, [{ layer: 'root', rel: 'rootfs/etc/passwd' }]);
    });
  });

  describe('longest mapping within a layer wins', () => {
    const maps = { '/': 'root', '/usr': 'u', '/usr/lib': 'lib64', '/usr/lib/x/y': 'deep' };
    const forward = new Resolver([layer('L', 1, { map: maps })]);
    const reversed = new Resolver([layer('L', 1, { map: Object.fromEntries(Object.entries(maps).reverse()) })]);
    const expect: Array<[string, string]> = [
      ['/', 'root'],
      ['/etc', 'root/etc'],
      ['/usr', 'u'],
      ['/usr/bin/cc', 'u/bin/cc'],
      ['/usr/libexec', 'u/libexec'],
      ['/usr/lib', 'lib64'],
      ['/usr/lib/x', 'lib64/x'],
      ['/usr/lib/x/y', 'deep'],
      ['/usr/lib/x/y/z', 'deep/z'],
      ['/usr/lib/x/yy', 'lib64/x/yy'],
    ];
    for (const [p, rel] of expect) {
      it(`${p} → ${JSON.stringify(rel)} (independent of declaration order)`, () => {
        assert.deepEqual(forward.resolve(p).branches, [{ layer: 'L', rel }]);
        assert.deepEqual(reversed.resolve(p).branches, [{ layer: 'L', rel }]);
      });
    }
    it('one layer contributes at most one branch', () => {
      assert.equal(forward.resolve('/usr/lib/x/y/z').branches.length, 1);
    });
  });

  describe('order across layers', () => {
    it('puts higher priority first and makes it the owner, regardless of input order', () => {
      const lo = layer('lo', 10, { map: { '/opt/x': 'lo-x' } });
      const hi = layer('hi', 20, { map: { '/opt/x': 'hi-x' } });
      const want: Resolution = {
        branches: [
          { layer: 'hi', rel: 'hi-x/bin' },
          { layer: 'lo', rel: 'lo-x/bin' },
        ],
        base: true,
        owner: 'hi',
        hidden: false,
      };
      assert.deepEqual(new Resolver([lo, hi]).resolve('/opt/x/bin'), want);
      assert.deepEqual(new Resolver([hi, lo]).resolve('/opt/x/bin'), want);
      assert.deepEqual(
        new Resolver([lo, hi]).layers.map((l) => l.name),
        ['hi', 'lo'],
      );
    });

    it('breaks priority ties by name ascending', () => {
      const r = new Resolver([
        layer('beta', 5, { map: { '/': '' } }),
        layer('alpha', 5, { map: { '/': '' } }),
        layer('gamma', 5, { map: { '/': '' } }),
      ]);
      const res = r.resolve('/f');
      assert.deepEqual(
        res.branches.map((b) => b.layer),
        ['alpha', 'beta', 'gamma'],
      );
      assert.equal(res.owner, 'alpha');
    });

    it('handles negative priorities', () => {
      const r = new Resolver([layer('neg', -5, { map: { '/a': 'n' } }), layer('zero', 0, { map: { '/a': 'z' } })]);
      assert.deepEqual(
        r.resolve('/a').branches.map((b) => b.layer),
        ['zero', 'neg'],
      );
    });

    it('makes the owner the highest layer that maps the path, not the highest layer overall', () => {
      const r = new Resolver([
        layer('top', 300, { map: { '/usr/share': 's' } }),
        layer('mid', 200, { map: { '/opt/tool': 't' } }),
        layer('low', 100, { map: { '/opt': 'o' } }),
      ]);
      assert.deepEqual(r.resolve('/opt/tool/bin'), {
        branches: [
          { layer: 'mid', rel: 't/bin' },
          { layer: 'low', rel: 'o/tool/bin' },
        ],
        base: true,
        owner: 'mid',
        hidden: false,
      });
      assert.deepEqual(r.resolve('/opt/other'), { branches: [{ layer: 'low', rel: 'o/other' }], base: true, owner: 'low', hidden: false });
      assert.deepEqual(r.resolve('/usr/share/doc'), {
        branches: [{ layer: 'top', rel: 's/doc' }],
        base: true,
        owner: 'top',
        hidden: false,
      });
    });

    it('lets each layer choose its own longest mapping', () => {
      const r = new Resolver([
        layer('a', 2, { map: { '/usr': 'ua', '/usr/lib': 'la' } }),
        layer('b', 1, { map: { '/usr/lib/gcc': 'gb', '/': 'rb' } }),
      ]);
      assert.deepEqual(r.resolve('/usr/lib/gcc/x').branches, [
        { layer: 'a', rel: 'la/gcc/x' },
        { layer: 'b', rel: 'gb/x' },
      ]);
      assert.deepEqual(r.resolve('/usr/bin').branches, [
        { layer: 'a', rel: 'ua/bin' },
        { layer: 'b', rel: 'rb/usr/bin' },
      ]);
    });
  });

  describe('excludes', () => {
    const top = layer('top', 200, { map: { '/': '' }, excludes: ['/home', '/opt/tool'] });
    const below = layer('below', 100, { map: { '/home': 'h' } });

    it('make the layer transparent at and below the excluded path', () => {
      const r = new Resolver([top]);
      assert.deepEqual(r.resolve('/home'), PASS);
      assert.deepEqual(r.resolve('/home/user/.bashrc'), PASS);
      assert.deepEqual(r.resolve('/opt/tool/bin'), PASS);
    });

    it('do not affect paths that merely share a string prefix', () => {
      const r = new Resolver([top]);
      assert.deepEqual(r.resolve('/homes').branches, [{ layer: 'top', rel: 'homes' }]);
      assert.deepEqual(r.resolve('/opt/toolbox/bin').branches, [{ layer: 'top', rel: 'opt/toolbox/bin' }]);
      assert.deepEqual(r.resolve('/opt').branches, [{ layer: 'top', rel: 'opt' }]);
    });

    it('leave the layer below applying (it becomes the owner)', () => {
      const r = new Resolver([top, below]);
      assert.deepEqual(r.resolve('/home/user'), {
        branches: [{ layer: 'below', rel: 'h/user' }],
        base: true,
        owner: 'below',
        hidden: false,
      });
      assert.deepEqual(r.resolve('/etc').branches, [{ layer: 'top', rel: 'etc' }]);
    });

    it('in a lower layer only affect that layer', () => {
      const r = new Resolver([layer('hi', 2, { map: { '/opt': 'hi' } }), layer('lo', 1, { map: { '/opt': 'lo' }, excludes: ['/opt/x'] })]);
      assert.deepEqual(r.resolve('/opt/x/y'), { branches: [{ layer: 'hi', rel: 'hi/x/y' }], base: true, owner: 'hi', hidden: false });
      assert.deepEqual(
        r.resolve('/opt/z').branches.map((b) => b.layer),
        ['hi', 'lo'],
      );
    });

    it('take precedence over a delete entry in the same layer', () => {
      const r = new Resolver([
        layer('L', 2, { map: { '/a': 'a' }, excludes: ['/a/b'], deletes: ['/a/b/c', '/a'] }),
        layer('M', 1, { map: { '/a': 'm' } }),
      ]);
      assert.deepEqual(r.resolve('/a/b/c/d'), { branches: [{ layer: 'M', rel: 'm/b/c/d' }], base: true, owner: 'M', hidden: false });
      // outside the exclude the delete of '/a' applies
      assert.deepEqual(r.resolve('/a/x'), HIDDEN);
    });

    it('in the only layer that maps make the path a plain base path', () => {
      const r = new Resolver([layer('L', 1, { map: { '/opt/t': 't' }, excludes: ['/opt/t/cache'] })]);
      assert.deepEqual(r.resolve('/opt/t/cache/f'), PASS);
      assert.deepEqual(r.resolve('/opt/t/cached').branches, [{ layer: 'L', rel: 't/cached' }]);
    });
  });

  describe('delete entries', () => {
    it('at the top hide the path and everything below it (hidden, no base)', () => {
      const r = new Resolver([
        layer('slim', 200, { deletes: ['/usr/share/doc'] }),
        layer('docs', 100, { map: { '/usr/share/doc': 'doc' } }),
      ]);
      assert.deepEqual(r.resolve('/usr/share/doc'), HIDDEN);
      assert.deepEqual(r.resolve('/usr/share/doc/gcc/README'), HIDDEN);
      assert.deepEqual(r.resolve('/usr/share/docs'), PASS);
      assert.deepEqual(r.resolve('/usr/share'), PASS);
    });

    it('win over a mapping in the same layer', () => {
      const r = new Resolver([layer('L', 1, { map: { '/': '' }, deletes: ['/etc/secret'] })]);
      assert.deepEqual(r.resolve('/etc/secret/key'), HIDDEN);
      assert.deepEqual(r.resolve('/etc/secrets').branches, [{ layer: 'L', rel: 'etc/secrets' }]);
    });

    it('below an owner stop the chain there: branches above are kept, base is false, not hidden', () => {
      const r = new Resolver([
        layer('new', 300, { map: { '/opt/t': 'new' } }),
        layer('mask', 200, { deletes: ['/opt/t'] }),
        layer('old', 100, { map: { '/opt/t': 'old' } }),
      ]);
      assert.deepEqual(r.resolve('/opt/t/bin'), { branches: [{ layer: 'new', rel: 'new/bin' }], base: false, owner: 'new', hidden: false });
      assert.deepEqual(r.resolve('/opt/t'), { branches: [{ layer: 'new', rel: 'new' }], base: false, owner: 'new', hidden: false });
      assert.deepEqual(r.resolve('/opt/u'), PASS);
    });

    it('in a lower layer with nothing mapped above still hide the path', () => {
      const r = new Resolver([
        layer('hi', 2, { map: { '/usr': 'u' }, excludes: ['/usr/share'] }),
        layer('lo', 1, { deletes: ['/usr/share/man'] }),
      ]);
      assert.deepEqual(r.resolve('/usr/share/man/man1'), HIDDEN);
      assert.deepEqual(r.resolve('/usr/share/info'), PASS);
      assert.deepEqual(r.resolve('/usr/bin').branches, [{ layer: 'hi', rel: 'u/bin' }]);
    });

    it('in a lower layer stop its own mapping from applying', () => {
      const r = new Resolver([layer('hi', 2, { map: { '/a': 'h' } }), layer('lo', 1, { map: { '/a': 'l' }, deletes: ['/a/gone'] })]);
      assert.deepEqual(r.resolve('/a/gone/x'), { branches: [{ layer: 'hi', rel: 'h/gone/x' }], base: false, owner: 'hi', hidden: false });
      assert.deepEqual(
        r.resolve('/a/kept').branches.map((b) => b.layer),
        ['hi', 'lo'],
      );
    });

    it('do not hide paths that merely share a string prefix', () => {
      const r = new Resolver([layer('L', 1, { deletes: ['/opt/tool'] })]);
      assert.deepEqual(r.resolve('/opt/tool'), HIDDEN);
      assert.deepEqual(r.resolve('/opt/toolbox'), PASS);
      assert.deepEqual(r.resolve('/opt/toolbox/x'), PASS);
      assert.deepEqual(r.resolve('/opt/too'), PASS);
    });
  });

  describe('prefix-sharing names never match', () => {
    const r = new Resolver([layer('tool', 2, { map: { '/opt/tool': 'tool' } }), layer('box', 1, { map: { '/opt/toolbox': 'box' } })]);
    it('/opt/toolbox resolves only through its own mapping', () => {
      assert.deepEqual(r.resolve('/opt/toolbox/bin'), {
        branches: [{ layer: 'box', rel: 'box/bin' }],
        base: true,
        owner: 'box',
        hidden: false,
      });
    });
    it('/opt/tool resolves only through its own mapping', () => {
      assert.deepEqual(r.resolve('/opt/tool/bin'), {
        branches: [{ layer: 'tool', rel: 'tool/bin' }],
        base: true,
        owner: 'tool',
        hidden: false,
      });
    });
    it("within one layer, the shorter prefix-sharing mapping is not chosen as the longer path's ancestor", () => {
      const one = new Resolver([layer('L', 1, { map: { '/opt/tool': 't', '/opt': 'o' } })]);
      assert.deepEqual(one.resolve('/opt/toolbox').branches, [{ layer: 'L', rel: 'o/toolbox' }]);
    });
  });
});

describe('resolver: rulePaths, specialChildren, isMappingAncestor', () => {
  const r = new Resolver([
    layer('a', 2, { map: { '/usr/bin': 'bin', '/opt/x/y': 'y' }, excludes: ['/usr/bin/cache', '/etc/a.conf'] }),
    layer('b', 1, { map: { '/usr/lib': 'lib', '/usr/bin': 'b2' }, deletes: ['/var'] }),
  ]);

  it('rulePaths lists every mapping original, exclude and delete once, sorted', () => {
    assert.deepEqual(r.rulePaths, ['/etc/a.conf', '/opt/x/y', '/usr/bin', '/usr/bin/cache', '/usr/lib', '/var']);
  });

  it('specialChildren of the root names the first segment of every rule path', () => {
    assert.deepEqual(r.specialChildren('/').sort(), ['etc', 'opt', 'usr', 'var']);
  });

  it('specialChildren of a nested directory names only its own children', () => {
    assert.deepEqual(r.specialChildren('/usr').sort(), ['bin', 'lib']);
    assert.deepEqual(r.specialChildren('/usr/bin'), ['cache']);
    assert.deepEqual(r.specialChildren('/opt'), ['x']);
    assert.deepEqual(r.specialChildren('/opt/x'), ['y']);
    assert.deepEqual(r.specialChildren('/etc'), ['a.conf']);
  });

  it('specialChildren excludes the directory itself and unrelated or prefix-sharing directories', () => {
    assert.deepEqual(r.specialChildren('/opt/x/y'), []);
    assert.deepEqual(r.specialChildren('/var'), []);
    assert.deepEqual(r.specialChildren('/usr/bin/cache'), []);
    assert.deepEqual(r.specialChildren('/home'), []);
    assert.deepEqual(r.specialChildren('/us'), []);
    assert.deepEqual(r.specialChildren('/usr/b'), []);
  });

  it('specialChildren does not report a child of a prefix-sharing sibling', () => {
    const rr = new Resolver([layer('L', 1, { map: { '/opt/toolbox/bin': 'b', '/opt/tool': 't' } })]);
    assert.deepEqual(rr.specialChildren('/opt/tool'), []);
    assert.deepEqual(rr.specialChildren('/opt/toolbox'), ['bin']);
    assert.deepEqual(rr.specialChildren('/opt').sort(), ['tool', 'toolbox']);
  });

  it("specialChildren of '/' ignores a '/' rule path", () => {
    const rr = new Resolver([layer('L', 1, { map: { '/': '', '/a/b': 'x' } })]);
    assert.deepEqual(rr.specialChildren('/'), ['a']);
  });

  it('isMappingAncestor is true only for strict ancestors of mapping originals', () => {
    assert.equal(r.isMappingAncestor('/'), true);
    assert.equal(r.isMappingAncestor('/usr'), true);
    assert.equal(r.isMappingAncestor('/opt'), true);
    assert.equal(r.isMappingAncestor('/opt/x'), true);
    assert.equal(r.isMappingAncestor('/opt/x/y'), false);
    assert.equal(r.isMappingAncestor('/usr/bin'), false);
    assert.equal(r.isMappingAncestor('/usr/bin/sub'), false);
    assert.equal(r.isMappingAncestor('/op'), false);
    assert.equal(r.isMappingAncestor('/opt/xx'), false);
  });

  it('isMappingAncestor ignores excludes and deletes', () => {
    assert.equal(r.isMappingAncestor('/etc'), false);
    assert.equal(r.isMappingAncestor('/usr/bin/cache'), false);
    const rr = new Resolver([layer('L', 1, { excludes: ['/a/b'], deletes: ['/c/d'] })]);
    assert.equal(rr.isMappingAncestor('/'), false);
    assert.equal(rr.isMappingAncestor('/a'), false);
    assert.equal(rr.isMappingAncestor('/c'), false);
  });

  it('isMappingAncestor does not treat a prefix-sharing path as an ancestor', () => {
    const rr = new Resolver([layer('L', 1, { map: { '/opt/toolbox/x': 'x' } })]);
    assert.equal(rr.isMappingAncestor('/opt/tool'), false);
    assert.equal(rr.isMappingAncestor('/opt/toolbox'), true);
  });
});

describe('resolver: a realistic toolchain switch', () => {
  // Two compilers, one a newer default, plus a slim layer that drops documentation.
  const gcc12 = layer('gcc-12', 100, { map: { '/usr/bin/gcc': 'bin/gcc-12', '/usr/lib/gcc': 'lib/gcc' } });
  const gcc13 = layer('gcc-13', 110, { map: { '/usr/bin/gcc': 'bin/gcc', '/usr/lib/gcc': 'lib/gcc' }, excludes: ['/usr/lib/gcc/plugin'] });
  const slim = layer('slim', 500, { deletes: ['/usr/share/doc'] });
  const r = new Resolver([gcc12, slim, gcc13]);

  it('orders the layers by priority', () => {
    assert.deepEqual(
      r.layers.map((l) => l.name),
      ['slim', 'gcc-13', 'gcc-12'],
    );
  });

  it('resolves the compiler through both layers with the newer one owning it', () => {
    assert.deepEqual(r.resolve('/usr/bin/gcc'), {
      branches: [
        { layer: 'gcc-13', rel: 'bin/gcc' },
        { layer: 'gcc-12', rel: 'bin/gcc-12' },
      ],
      base: true,
      owner: 'gcc-13',
      hidden: false,
    });
  });

  it('lets the older layer supply the excluded plugin directory', () => {
    assert.deepEqual(r.resolve('/usr/lib/gcc/plugin/x.so'), {
      branches: [{ layer: 'gcc-12', rel: 'lib/gcc/plugin/x.so' }],
      base: true,
      owner: 'gcc-12',
      hidden: false,
    });
  });

  it('hides documentation completely', () => {
    assert.deepEqual(r.resolve('/usr/share/doc/gcc'), HIDDEN);
  });

  it('passes other base paths through', () => {
    assert.deepEqual(r.resolve('/usr/bin/ls'), PASS);
    assert.deepEqual(r.resolve('/usr/bin/gcc-ar'), PASS);
  });
});
