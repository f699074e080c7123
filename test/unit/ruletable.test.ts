/**
 * The rule table text strata-viewd reads (daemon/fuse/ruletable.ts): percent-encoding, layer order,
 * fields, and a parse back that gives the Resolver's layers again.
 */
import assert from 'node:assert/strict';
import { Resolver, RuleLayer } from '../../shared/resolver';
import { compileRuleTable, pctDecode, pctEncode } from '../../daemon/fuse/ruletable';

const places = {
  filesDir: (l: string) => `/store/${l}/files`,
  writableDir: (l: string) => `/store/${l}/writable/files`,
  metaDir: (l: string) => `/store/${l}/writable/meta`,
};

function layer(name: string, priority: number, map: Record<string, string>, excludes: string[] = [], deletes: string[] = []): RuleLayer {
  return { name, priority, mappings: Object.entries(map).map(([original, destination]) => ({ original, destination })), excludes, deletes };
}

/** The reader's side, written from docs/view-core.md, to check the text round-trips. */
function parse(text: string): { generation: number; layers: Array<RuleLayer & { dirs: string[] }> } {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'the text ends with a newline');
  assert.equal(lines.shift(), 'strata-rules 1');
  const gen = /^generation (\d+)$/.exec(lines.shift() ?? '');
  assert.ok(gen);
  assert.equal(lines.pop(), 'end');
  const layers: Array<RuleLayer & { dirs: string[] }> = [];
  for (const l of lines) {
    const f = l.split(' ');
    for (const x of f) assert.match(x, /^[!-~]+$/, `field "${x}" of "${l}" holds only printable ASCII`);
    const dec = (s: string) => pctDecode(s).toString('utf8');
    if (f[0] === 'layer') {
      assert.equal(f.length, 5);
      layers.push({ name: dec(f[1]), priority: 0, mappings: [], excludes: [], deletes: [], dirs: f.slice(2).map(dec) });
    } else if (f[0] === 'map') {
      assert.equal(f.length, 3);
      layers[layers.length - 1].mappings.push({ original: dec(f[1]), destination: f[2] === '.' ? '' : dec(f[2]) });
    } else if (f[0] === 'exclude') {
      layers[layers.length - 1].excludes.push(dec(f[1]));
    } else if (f[0] === 'delete') {
      layers[layers.length - 1].deletes.push(dec(f[1]));
    } else {
      assert.fail(`unknown record "${l}"`);
    }
  }
  return { generation: Number(gen[1]), layers };
}

describe('rule table: percent-encoding', function () {
  it('keeps printable ASCII and encodes spaces, %, control bytes and UTF-8', function () {
    assert.equal(pctEncode('/usr/local/bin'), '/usr/local/bin');
    assert.equal(pctEncode('/a b'), '/a%20b');
    assert.equal(pctEncode('100%'), '100%25');
    assert.equal(pctEncode('a\nb\tc'), 'a%0Ab%09c');
    assert.equal(pctEncode('/café'), '/caf%C3%A9');
    assert.equal(pctEncode(Buffer.from([0xff, 0x2f, 0xfe])), '%FF/%FE');
  });

  it('decodes what it encodes, bytes included, and refuses malformed fields', function () {
    for (const s of ['/a b/%/ü', '', 'x~!']) assert.equal(pctDecode(pctEncode(s)).toString('utf8'), s);
    assert.deepEqual(pctDecode('%ff%FE'), Buffer.from([0xff, 0xfe]));
    assert.throws(() => pctDecode('%G1'));
    assert.throws(() => pctDecode('%4'));
    assert.throws(() => pctDecode('a b'));
  });
});

describe('rule table: compileRuleTable', function () {
  it('writes an empty table for no active layers', function () {
    assert.equal(compileRuleTable(new Resolver([]), places, 0), 'strata-rules 1\ngeneration 0\nend\n');
  });

  it('lists layers in resolution order with their folders and rules', function () {
    const r = new Resolver([
      layer('low', 0, { '/opt': 'opt' }),
      layer('high', 5, { '/': '', '/usr/bin': 'bin' }, ['/usr/bin/skip'], ['/etc/gone']),
      layer('alpha', 0, { '/x y': 'd e' }),
    ]);
    const text = compileRuleTable(r, places, 42);
    assert.equal(
      text,
      [
        'strata-rules 1',
        'generation 42',
        'layer high /store/high/files /store/high/writable/files /store/high/writable/meta',
        'map / .',
        'map /usr/bin bin',
        'exclude /usr/bin/skip',
        'delete /etc/gone',
        'layer alpha /store/alpha/files /store/alpha/writable/files /store/alpha/writable/meta',
        'map /x%20y d%20e',
        'layer low /store/low/files /store/low/writable/files /store/low/writable/meta',
        'map /opt opt',
        'end',
        '',
      ].join('\n'),
    );
  });

  it('round-trips through a reader: same layers, rules and folders, in the same order', function () {
    const r = new Resolver([
      layer('a+b', 1, { '/ü/ß': 'x/ü', '/%': '' }, ['/ü/ß/no'], []),
      layer('c.d', 1, { '/': 'root' }, [], ['/tmp', '/ü']),
    ]);
    const back = parse(compileRuleTable(r, places, 3));
    assert.equal(back.generation, 3);
    assert.deepEqual(
      back.layers.map((l) => l.name),
      r.layers.map((l) => l.name),
    );
    for (const [i, l] of r.layers.entries()) {
      assert.deepEqual(back.layers[i].mappings, l.mappings);
      assert.deepEqual(back.layers[i].excludes, l.excludes);
      assert.deepEqual(back.layers[i].deletes, l.deletes);
      assert.deepEqual(back.layers[i].dirs, [places.filesDir(l.name), places.writableDir(l.name), places.metaDir(l.name)]);
    }
  });

  it('refuses relative folders and a bad generation', function () {
    const r = new Resolver([layer('a', 0, { '/a': 'a' })]);
    assert.throws(() => compileRuleTable(r, { ...places, metaDir: () => 'rel/meta' }, 1), /not absolute/);
    assert.throws(() => compileRuleTable(r, places, -1), RangeError);
    assert.throws(() => compileRuleTable(r, places, 1.5), RangeError);
  });
});
