/**
 * Unit tests for layer.json validation and format upgrades (daemon/layerspec.ts).
 */
import assert from 'node:assert/strict';
import { MAX_LAYER_JSON, checkLayerSpec, destRel, parseLayerJson } from '../../daemon/layerspec';
import { StrataError } from '../../shared/errors';
import { ErrorInfo, LAYER_FORMAT, LayerSpec } from '../../protocol';

const FILE = '/home/u/.strata/layers/gcc/layer.json';

function valid(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { format: 2, name: 'gcc-13', mappings: [{ original: '/opt/gcc', destination: 'gcc' }], ...extra };
}

function problemsOf(raw: unknown): ErrorInfo[] {
  const r = checkLayerSpec(raw, FILE);
  assert.equal(r.spec, undefined, `expected problems, got a spec: ${JSON.stringify(r.spec)}`);
  assert.ok(r.problems.length > 0);
  return r.problems;
}

function specOf(raw: unknown): LayerSpec {
  const r = checkLayerSpec(raw, FILE);
  assert.deepEqual(r.problems, []);
  assert.ok(r.spec);
  return r.spec;
}

/** Exactly one problem, for `field`, whose message is "<file>: <field>: <reason>". */
function onlyProblem(raw: unknown, field: string, code: ErrorInfo['code'] = 'E_LAYER_INVALID'): ErrorInfo {
  const ps = problemsOf(raw);
  assert.equal(ps.length, 1, JSON.stringify(ps));
  assert.equal(ps[0].code, code);
  assert.ok(ps[0].message.startsWith(`${FILE}: ${field}: `), ps[0].message);
  return ps[0];
}

function throwsStrata(fn: () => unknown, code: string, re?: RegExp): StrataError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StrataError, `expected a StrataError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  if (re) assert.match(caught.message, re);
  return caught;
}

describe('layerspec: checkLayerSpec (format 2)', () => {
  it('accepts a minimal spec and fills defaults', () => {
    assert.deepEqual(specOf(valid()), {
      format: 2,
      name: 'gcc-13',
      version: '',
      description: '',
      priority: 100,
      mappings: [{ original: '/opt/gcc', destination: 'gcc' }],
      excludes: [],
      deletes: [],
    });
  });

  it('accepts a full spec and keeps every field', () => {
    const raw = {
      format: 2,
      name: 'node_20.1+x',
      version: '20.1.0',
      description: 'Node 20 toolchain',
      priority: -42,
      mappings: [
        { original: '/usr/local/bin/node', destination: 'bin/node' },
        { original: '/', destination: '/' },
      ],
      excludes: ['/usr/local/bin/npm'],
      deletes: ['/usr/share/doc/node'],
    };
    assert.deepEqual(specOf(raw), raw);
  });

  it('accepts an empty mappings list', () => {
    assert.deepEqual(specOf(valid({ mappings: [] })).mappings, []);
  });

  it('normalizes originals to absolute view paths', () => {
    const s = specOf(
      valid({
        mappings: [
          { original: 'usr/bin', destination: 'a' },
          { original: '/opt//x/./y/', destination: 'b' },
          { original: '/', destination: 'c' },
        ],
      }),
    );
    assert.deepEqual(
      s.mappings.map((m) => m.original),
      ['/usr/bin', '/opt/x/y', '/'],
    );
  });

  it("normalizes destinations; the whole layer is written '/'", () => {
    const dests = ['', '/', '.', './', 'a/b/', './a//b', 'x'];
    const s = specOf(valid({ mappings: dests.map((d, i) => ({ original: `/m${i}`, destination: d })) }));
    assert.deepEqual(
      s.mappings.map((m) => m.destination),
      ['/', '/', '/', '/', 'a/b', 'a/b', 'x'],
    );
  });

  it('normalizes and de-duplicates excludes and deletes, keeping first-seen order', () => {
    const s = specOf(valid({ excludes: ['b/', '/a', '/b', '//a/.'], deletes: ['/z/y/', 'z/y', '/c'] }));
    assert.deepEqual(s.excludes, ['/b', '/a']);
    assert.deepEqual(s.deletes, ['/z/y', '/c']);
  });

  it('is idempotent: a returned spec validates to itself', () => {
    const s = specOf(valid({ excludes: ['x/'], mappings: [{ original: 'a/', destination: '' }] }));
    assert.deepEqual(specOf(JSON.parse(JSON.stringify(s))), s);
  });

  it('does not mutate its input', () => {
    const raw = valid({ excludes: ['x/'] });
    const copy = JSON.parse(JSON.stringify(raw));
    checkLayerSpec(raw, FILE);
    assert.deepEqual(raw, copy);
  });

  describe('top level', () => {
    for (const bad of [null, [], 'layer', 42, true, undefined]) {
      it(`refuses ${JSON.stringify(bad) ?? 'undefined'} as not an object`, () => {
        const p = onlyProblem(bad, '(top level)');
        assert.match(p.message, /must be a JSON object/);
      });
    }
  });

  describe('format', () => {
    it('refuses a missing format and names the current one', () => {
      const p = onlyProblem({ name: 'x', mappings: [] }, 'format');
      assert.match(p.message, new RegExp(`missing; this Strata writes format ${LAYER_FORMAT}`));
    });

    for (const bad of [0, -1, 1.5, '2', null, true, [2], {}]) {
      it(`refuses format ${JSON.stringify(bad)}`, () => {
        const p = onlyProblem(valid({ format: bad }), 'format');
        assert.match(p.message, /must be a positive integer/);
        assert.ok(p.message.includes(JSON.stringify(bad)), p.message);
      });
    }

    for (const newer of [3, 4, 100]) {
      it(`refuses format ${newer} with E_LAYER_FORMAT and a hint to upgrade`, () => {
        const p = onlyProblem(valid({ format: newer }), 'format', 'E_LAYER_FORMAT');
        assert.ok(p.message.includes(`${newer} was written by a newer Strata`), p.message);
        assert.ok(p.message.includes(`formats 1 to ${LAYER_FORMAT}`), p.message);
        assert.equal(p.hint, 'Upgrade Strata to use this layer.');
      });
    }

    it('stops at a bad format without reporting other fields', () => {
      const ps = problemsOf({ format: 9, name: '!!', priority: 'x', mappings: 5, bogus: 1 });
      assert.equal(ps.length, 1);
      assert.equal(ps[0].code, 'E_LAYER_FORMAT');
    });

    it('LAYER_FORMAT is 2', () => {
      assert.equal(LAYER_FORMAT, 2);
    });
  });

  describe('unknown fields', () => {
    it('refuses an unknown top-level field by name', () => {
      const p = onlyProblem(valid({ colour: 'red' }), 'colour');
      assert.match(p.message, /unknown field$/);
    });

    it('refuses format-1 field names in a format-2 file', () => {
      const ps = problemsOf(valid({ map: {}, exclude: [], hide: [] }));
      assert.deepEqual(ps.map((p) => p.message).sort(), [
        `${FILE}: exclude: unknown field`,
        `${FILE}: hide: unknown field`,
        `${FILE}: map: unknown field`,
      ]);
    });

    it('refuses an unknown key inside a mapping', () => {
      const p = onlyProblem(valid({ mappings: [{ original: '/a', destination: 'a', mode: 'ro' }] }), 'mappings[0].mode');
      assert.match(p.message, /unknown field$/);
    });
  });

  describe('requires', () => {
    it('is absent when not given or empty, so layer.json reads and writes as before', () => {
      assert.equal('requires' in specOf(valid()), false);
      assert.equal('requires' in specOf(valid({ requires: [] })), false);
    });

    it('keeps the names, each once', () => {
      assert.deepEqual(specOf(valid({ requires: ['jdk-21', 'kotlin', 'jdk-21'] })).requires, ['jdk-21', 'kotlin']);
    });

    it('refuses a name that is not a layer name, by index', () => {
      const p = onlyProblem(valid({ requires: ['jdk', 'a b'] }), 'requires[1]');
      assert.match(p.message, /must be a layer name/);
    });

    it('refuses a list that is not one', () => {
      onlyProblem(valid({ requires: 'jdk' }), 'requires');
    });

    it('refuses the layer itself', () => {
      const p = onlyProblem(valid({ requires: ['jdk', 'gcc-13'] }), 'requires[1]');
      assert.match(p.message, /cannot require itself/);
    });
  });

  describe('name', () => {
    for (const ok of ['a', 'A', '0', 'gcc-13.2', 'x+y_z', 'a'.repeat(64), 'Node.JS_v20+beta-1']) {
      it(`accepts ${JSON.stringify(ok)}`, () => {
        assert.equal(specOf(valid({ name: ok })).name, ok);
      });
    }
    for (const bad of [undefined, '', '-x', '.x', '_x', '+x', 'a b', 'a/b', 'a'.repeat(65), 'é', 'a\n', 7, null]) {
      it(`refuses ${JSON.stringify(bad) ?? 'a missing name'}`, () => {
        const raw = valid({ name: bad });
        if (bad === undefined) delete raw.name;
        const p = onlyProblem(raw, 'name');
        assert.match(p.message, /must match/);
      });
    }
  });

  describe('version, description, priority', () => {
    it('accepts a 128-character version and refuses 129', () => {
      assert.equal(specOf(valid({ version: 'v'.repeat(128) })).version, 'v'.repeat(128));
      onlyProblem(valid({ version: 'v'.repeat(129) }), 'version');
    });

    it('refuses a non-string version', () => {
      const p = onlyProblem(valid({ version: 1.2 }), 'version');
      assert.match(p.message, /must be a string of at most 128 characters/);
    });

    it('accepts a 4096-character description and refuses 4097 or a non-string', () => {
      assert.equal(specOf(valid({ description: 'd'.repeat(4096) })).description.length, 4096);
      onlyProblem(valid({ description: 'd'.repeat(4097) }), 'description');
      onlyProblem(valid({ description: ['x'] }), 'description');
    });

    for (const ok of [0, 1, -1, 1_000_000, -1_000_000, 100]) {
      it(`accepts priority ${ok}`, () => {
        assert.equal(specOf(valid({ priority: ok })).priority, ok);
      });
    }

    for (const bad of [1.5, '5', 1_000_001, -1_000_001, true, []]) {
      it(`refuses priority ${JSON.stringify(bad)}`, () => {
        const p = onlyProblem(valid({ priority: bad }), 'priority');
        assert.match(p.message, /must be an integer between -1000000 and 1000000/);
      });
    }
  });

  describe('mappings', () => {
    for (const bad of [undefined, null, {}, 'a', 3, { '/a': 'a' }]) {
      it(`refuses mappings ${JSON.stringify(bad) ?? '(missing)'}`, () => {
        const raw = valid({ mappings: bad });
        if (bad === undefined) delete raw.mappings;
        const p = onlyProblem(raw, 'mappings');
        assert.match(p.message, /must be a list of \{original, destination\}/);
      });
    }

    for (const bad of [null, 'x', 1, ['/a', 'a']]) {
      it(`refuses a mapping entry ${JSON.stringify(bad)} by index`, () => {
        const raw = valid({ mappings: [{ original: '/ok', destination: 'ok' }, bad] });
        const p = onlyProblem(raw, 'mappings[1]');
        assert.match(p.message, /must be an object \{original, destination\}/);
      });
    }

    it('refuses a missing or non-string original', () => {
      onlyProblem(valid({ mappings: [{ destination: 'a' }] }), 'mappings[0].original');
      const p = onlyProblem(valid({ mappings: [{ original: 5, destination: 'a' }] }), 'mappings[0].original');
      assert.match(p.message, /must be a string/);
    });

    it("refuses an original with '..' or an empty original (E_LAYER_INVALID)", () => {
      onlyProblem(valid({ mappings: [{ original: '/opt/../etc', destination: 'a' }] }), 'mappings[0].original');
      onlyProblem(valid({ mappings: [{ original: '', destination: 'a' }] }), 'mappings[0].original');
      onlyProblem(valid({ mappings: [{ original: '/a\0', destination: 'a' }] }), 'mappings[0].original');
    });

    for (const esc of ['..', '../x', 'a/../..', 'a/..', '../../etc/passwd']) {
      it(`refuses the escaping destination ${JSON.stringify(esc)} with E_MAPPING_ESCAPE`, () => {
        const p = onlyProblem(valid({ mappings: [{ original: '/a', destination: esc }] }), 'mappings[0].destination', 'E_MAPPING_ESCAPE');
        assert.match(p.message, /escape the layer/);
      });
    }

    for (const abs of ['/usr/lib', '/etc', '/a/']) {
      it(`refuses the absolute destination ${JSON.stringify(abs)} with E_MAPPING_ESCAPE`, () => {
        const p = onlyProblem(valid({ mappings: [{ original: '/a', destination: abs }] }), 'mappings[0].destination', 'E_MAPPING_ESCAPE');
        assert.match(p.message, /absolute/);
      });
    }

    it('reports the index of the bad mapping', () => {
      const raw = valid({
        mappings: [
          { original: '/a', destination: 'a' },
          { original: '/b', destination: 'b' },
          { original: '/c', destination: '../c' },
        ],
      });
      onlyProblem(raw, 'mappings[2].destination', 'E_MAPPING_ESCAPE');
    });

    it('refuses the same original mapped twice, after normalization', () => {
      const raw = valid({
        mappings: [
          { original: '/opt/x', destination: 'a' },
          { original: 'opt/x/', destination: 'b' },
        ],
      });
      const p = onlyProblem(raw, 'mappings[1].original');
      assert.match(p.message, /"\/opt\/x" is mapped twice/);
    });

    it('reports both original and destination problems of one mapping', () => {
      const ps = problemsOf(valid({ mappings: [{ original: '/..', destination: '..' }] }));
      assert.deepEqual(
        ps.map((p) => [p.code, p.message.split(': ')[1]]),
        [
          ['E_LAYER_INVALID', 'mappings[0].original'],
          ['E_MAPPING_ESCAPE', 'mappings[0].destination'],
        ],
      );
    });
  });

  for (const field of ['excludes', 'deletes'] as const) {
    describe(field, () => {
      it('defaults to an empty list', () => {
        assert.deepEqual(specOf(valid())[field], []);
      });

      for (const bad of ['/a', { a: 1 }, 5, true]) {
        it(`refuses ${JSON.stringify(bad)} as not a list`, () => {
          const p = onlyProblem(valid({ [field]: bad }), field);
          assert.match(p.message, /must be a list of view paths/);
        });
      }

      it("refuses '/' (the whole view), by index", () => {
        for (const root of ['/', '//', '.', '/./']) {
          const p = onlyProblem(valid({ [field]: ['/ok', root] }), `${field}[1]`);
          assert.match(p.message, /cannot be the whole view/);
        }
      });

      it("refuses '..', empty strings, NUL bytes and non-strings, by index", () => {
        onlyProblem(valid({ [field]: ['/a/../b'] }), `${field}[0]`);
        onlyProblem(valid({ [field]: ['/x', ''] }), `${field}[1]`);
        onlyProblem(valid({ [field]: ['/x\0'] }), `${field}[0]`);
        const p = onlyProblem(valid({ [field]: [3] }), `${field}[0]`);
        assert.match(p.message, /must be a string/);
      });
    });
  }

  it('collects every problem at once, each naming the file and field', () => {
    const raw = {
      format: 2,
      name: 'bad name',
      priority: 2.5,
      extra: true,
      mappings: [{ original: '/a', destination: '/abs' }, 7],
      excludes: ['/'],
      deletes: 'nope',
    };
    const ps = problemsOf(raw);
    const fields = ps.map((p) => {
      assert.ok(p.message.startsWith(FILE + ': '), p.message);
      return p.message.slice(FILE.length + 2).split(': ')[0];
    });
    assert.deepEqual(
      fields.sort(),
      ['deletes', 'excludes[0]', 'extra', 'mappings[0].destination', 'mappings[1]', 'name', 'priority'].sort(),
    );
    assert.equal(ps.find((p) => p.message.includes('mappings[0].destination'))?.code, 'E_MAPPING_ESCAPE');
    assert.ok(ps.filter((p) => !p.message.includes('mappings[0].destination')).every((p) => p.code === 'E_LAYER_INVALID'));
  });
});

describe('layerspec: checkLayerSpec (format 1 upgrade)', () => {
  it('upgrades map/exclude/hide to mappings/excludes/deletes and format 2', () => {
    const s = specOf({
      format: 1,
      name: 'old',
      priority: 5,
      map: { '/opt/tool': 'tool', '/etc/tool.conf/': '/' },
      exclude: ['/opt/tool/cache'],
      hide: ['/opt/legacy/'],
    });
    assert.deepEqual(s, {
      format: 2,
      name: 'old',
      version: '',
      description: '',
      priority: 5,
      mappings: [
        { original: '/opt/tool', destination: 'tool' },
        { original: '/etc/tool.conf', destination: '/' },
      ],
      excludes: ['/opt/tool/cache'],
      deletes: ['/opt/legacy'],
    });
  });

  it('defaults exclude and hide to empty lists', () => {
    const s = specOf({ format: 1, name: 'old', map: { '/a': 'a' } });
    assert.deepEqual(s.excludes, []);
    assert.deepEqual(s.deletes, []);
    assert.equal(s.format, 2);
  });

  it('accepts an empty map', () => {
    assert.deepEqual(specOf({ format: 1, name: 'old', map: {} }).mappings, []);
  });

  it('validates the upgraded content (escaping destination in a format-1 map)', () => {
    const ps = problemsOf({ format: 1, name: 'old', map: { '/a': '../../x' } });
    assert.equal(ps.length, 1);
    assert.equal(ps[0].code, 'E_MAPPING_ESCAPE');
  });

  it('refuses a format-1 file without a map', () => {
    const ps = problemsOf({ format: 1, name: 'old' });
    assert.equal(ps.length, 1);
    assert.match(ps[0].message, /mappings: must be a list/);
  });

  it('refuses unknown fields in a format-1 file', () => {
    const ps = problemsOf({ format: 1, name: 'old', map: {}, colour: 1 });
    assert.deepEqual(
      ps.map((p) => p.message),
      [`${FILE}: colour: unknown field`],
    );
  });

  it('refuses a bad hide entry', () => {
    const ps = problemsOf({ format: 1, name: 'old', map: {}, hide: ['/'] });
    assert.equal(ps.length, 1);
    assert.match(ps[0].message, /cannot be the whole view/);
  });
});

describe('layerspec: parseLayerJson', () => {
  it('parses valid text into a spec', () => {
    const text = JSON.stringify(valid({ excludes: ['/opt/gcc/doc/'] }), null, 2);
    assert.deepEqual(parseLayerJson(text, FILE), {
      format: 2,
      name: 'gcc-13',
      version: '',
      description: '',
      priority: 100,
      mappings: [{ original: '/opt/gcc', destination: 'gcc' }],
      excludes: ['/opt/gcc/doc'],
      deletes: [],
    });
  });

  it('upgrades a format-1 file', () => {
    const spec = parseLayerJson('{"format":1,"name":"v1","map":{"/x":"y"},"hide":["/z"]}', FILE);
    assert.equal(spec.format, 2);
    assert.deepEqual(spec.mappings, [{ original: '/x', destination: 'y' }]);
    assert.deepEqual(spec.deletes, ['/z']);
  });

  for (const bad of ['', '{', 'not json', '{"format":2,}', "{'format':2}"]) {
    it(`throws E_LAYER_INVALID for the non-JSON text ${JSON.stringify(bad)}`, () => {
      const e = throwsStrata(() => parseLayerJson(bad, FILE), 'E_LAYER_INVALID', /not valid JSON/);
      assert.ok(e.message.startsWith(FILE + ': '), e.message);
      assert.equal(e.hint, 'Fix the file or restore it from an export.');
    });
  }

  it('throws with the single problem and the default hint', () => {
    const e = throwsStrata(() => parseLayerJson(JSON.stringify(valid({ name: '' })), FILE), 'E_LAYER_INVALID');
    assert.ok(e.message.startsWith(`${FILE}: name: must match`), e.message);
    assert.ok(!e.message.includes('more:'), e.message);
    assert.equal(e.hint, 'Fix the field named above; nothing was changed.');
  });

  it('lists the other problems after the first', () => {
    const text = JSON.stringify(valid({ name: '', priority: 'high', colour: 1 }));
    const e = throwsStrata(() => parseLayerJson(text, FILE), 'E_LAYER_INVALID');
    assert.match(e.message, /\(and 2 more: /);
    assert.ok(e.message.includes(`${FILE}: priority: must be an integer`), e.message);
    assert.ok(e.message.includes(`${FILE}: colour: unknown field`), e.message);
  });

  it('takes the code of the first problem (E_MAPPING_ESCAPE)', () => {
    const text = JSON.stringify(valid({ mappings: [{ original: '/a', destination: '../b' }] }));
    throwsStrata(() => parseLayerJson(text, FILE), 'E_MAPPING_ESCAPE', /mappings\[0\]\.destination/);
  });

  it('throws E_LAYER_FORMAT with the upgrade hint for a newer format', () => {
    const e = throwsStrata(() => parseLayerJson(JSON.stringify(valid({ format: 3 })), FILE), 'E_LAYER_FORMAT', /newer Strata/);
    assert.equal(e.hint, 'Upgrade Strata to use this layer.');
  });

  it('converts to ErrorInfo with code, message and hint', () => {
    const e = throwsStrata(() => parseLayerJson('[]', FILE), 'E_LAYER_INVALID');
    assert.deepEqual(e.toInfo(), {
      code: 'E_LAYER_INVALID',
      message: `${FILE}: (top level): must be a JSON object`,
      hint: 'Fix the field named above; nothing was changed.',
    });
  });

  it('accepts text of exactly MAX_LAYER_JSON bytes and refuses one byte more', () => {
    assert.equal(MAX_LAYER_JSON, 1024 * 1024);
    const body = JSON.stringify(valid());
    const exact = body + ' '.repeat(MAX_LAYER_JSON - body.length);
    assert.equal(Buffer.byteLength(exact), MAX_LAYER_JSON);
    assert.equal(parseLayerJson(exact, FILE).name, 'gcc-13');
    const e = throwsStrata(() => parseLayerJson(exact + ' ', FILE), 'E_LAYER_INVALID', /larger than 1048576 bytes/);
    assert.ok(e.message.startsWith(FILE + ': '));
  });

  it('refuses oversized text before parsing it', () => {
    throwsStrata(() => parseLayerJson('x'.repeat(MAX_LAYER_JSON + 1), FILE), 'E_LAYER_INVALID', /larger than/);
  });

  it('measures the limit in bytes, as its message says, not in UTF-16 characters', () => {
    // A legitimate layer whose original paths use 3-byte characters: under the limit in
    // characters, well over it in bytes.
    const longSeg = '€'.repeat(200);
    const mappings: { original: string; destination: string }[] = [];
    for (let i = 0; mappings.length * (longSeg.length + 40) < 500_000; i++)
      mappings.push({ original: `/${i}/${longSeg}`, destination: `d${i}` });
    const text = JSON.stringify(valid({ mappings }));
    assert.ok(text.length <= MAX_LAYER_JSON, `chars ${text.length}`);
    assert.ok(Buffer.byteLength(text) > MAX_LAYER_JSON, `bytes ${Buffer.byteLength(text)}`);
    throwsStrata(() => parseLayerJson(text, FILE), 'E_LAYER_INVALID', /larger than 1048576 bytes/);
  });
});

describe('layerspec: destRel', () => {
  it("turns the whole-layer destination '/' into ''", () => {
    assert.equal(destRel({ original: '/a', destination: '/' }), '');
  });
  it('keeps other destinations as they are', () => {
    assert.equal(destRel({ original: '/a', destination: 'a/b' }), 'a/b');
    assert.equal(destRel({ original: '/a', destination: 'x' }), 'x');
  });
  it('round-trips with checkLayerSpec for every destination spelling of the root', () => {
    for (const d of ['', '/', '.', './']) {
      const s = specOf(valid({ mappings: [{ original: '/a', destination: d }] }));
      assert.equal(destRel(s.mappings[0]), '');
    }
  });
});
