/**
 * Unit tests for the control-channel validation (protocol/control.ts): checkRequest, checkIncoming,
 * the params of METHODS, isMethod and utf8Length.
 */
import assert from 'node:assert/strict';
import {
  CONTROL_PROTOCOL_VERSION,
  Checked,
  ErrorCodes,
  MAX_CONTROL_MESSAGE,
  METHODS,
  Method,
  Request,
  checkIncoming,
  checkRequest,
  isErrorCode,
  isMethod,
  utf8Length,
  ProblemSchema,
} from '../../protocol';
import * as v from 'valibot';

type Rule = { type: 'string' | 'number' | 'boolean' | 'string[]' | 'object' | '{original, destination}[]' | 'any'; optional?: boolean };
const S: Rule = { type: 'string' };
const N_OPT: Rule = { type: 'number', optional: true };
const S_OPT: Rule = { type: 'string', optional: true };

/** Every method's params as the agent and its clients have always spelled them: METHODS must match. */
const PARAM_RULES: { [M in Method]: Record<string, Rule> } = {
  status: {},
  'layer.list': {},
  'layer.show': { name: S },
  'layer.create': {
    name: S,
    from: S,
    priority: N_OPT,
    version: S_OPT,
    description: S_OPT,
    mappings: { type: '{original, destination}[]', optional: true },
    requires: { type: 'string[]', optional: true },
  },
  'layer.rm': { name: S },
  'layer.map': { name: S, original: S, destination: S },
  'layer.unmap': { name: S, original: S },
  'layer.exclude': { name: S, path: S },
  'layer.hide': { name: S, path: S },
  'layer.update': { name: S, spec: { type: 'object' } },
  'layer.validate': { spec: { type: 'any' } },
  'layer.reset': { name: S },
  'layer.export': { name: S, file: S },
  'layer.import': { file: S },
  'view.add': { base: S, at: S_OPT, warm: { type: 'boolean', optional: true } },
  'view.list': {},
  'view.rm': { base: S },
  activate: { names: { type: 'string[]' }, whenIdle: { type: 'boolean', optional: true }, timeoutMs: N_OPT },
  deactivate: { names: { type: 'string[]' }, force: { type: 'boolean', optional: true } },
  swap: { old: S, new: S, force: { type: 'boolean', optional: true } },
  'team.join': { url: S, secretFile: S, name: S_OPT, teamFile: S, teamText: S_OPT, listen: S_OPT, credentials: S_OPT },
  'team.leave': {},
  'team.status': {},
  'team.history': {},
  'team.revert': { id: S },
  'team.hold': { name: S, hold: { type: 'boolean' } },
  'team.reload': { teamText: S_OPT },
  'team.prune': { dryRun: { type: 'boolean', optional: true } },
  subscribe: {},
  'agent.stop': { keepViews: { type: 'boolean', optional: true } },
};

const ALL_METHODS: Method[] = [
  'status',
  'layer.list',
  'layer.show',
  'layer.create',
  'layer.rm',
  'layer.map',
  'layer.unmap',
  'layer.exclude',
  'layer.hide',
  'layer.update',
  'layer.validate',
  'layer.reset',
  'layer.export',
  'layer.import',
  'view.add',
  'view.list',
  'view.rm',
  'activate',
  'deactivate',
  'swap',
  'subscribe',
  'agent.stop',
  'team.join',
  'team.leave',
  'team.status',
  'team.history',
  'team.revert',
  'team.hold',
  'team.reload',
  'team.prune',
];

const GOOD: Record<Rule['type'], unknown> = {
  string: 'gcc-13',
  number: 7,
  boolean: true,
  'string[]': ['a', 'b'],
  object: { k: 1 },
  '{original, destination}[]': [{ original: '/tools/node', destination: '/' }],
  any: { anything: [1, 'x'] },
};

const WRONG: Record<Rule['type'], unknown[]> = {
  string: [5, null, ['x'], {}, true],
  number: ['5', null, true, [1], {}],
  boolean: ['true', 1, 0, null, []],
  'string[]': ['a', [1], ['a', null], {}, null, [['a']]],
  object: [null, [], 'x', 5, false],
  '{original, destination}[]': [
    'x',
    [1],
    [{ original: '/a' }],
    [{ original: '/a', destination: '/', more: 1 }],
    [{ original: 1, destination: '/' }],
    {},
  ],
  any: [],
};

function line(o: unknown): string {
  return JSON.stringify(o);
}

function bad<T>(r: Checked<T>): { code: string; message: string; id?: number } {
  assert.equal(r.ok, false, `expected a refusal, got ${JSON.stringify(r)}`);
  if (r.ok) throw new Error('unreachable');
  return { code: r.error.code, message: r.error.message, id: r.id };
}

function good(r: Checked<Request>): Request {
  assert.equal(r.ok, true, `expected acceptance, got ${JSON.stringify(r)}`);
  if (!r.ok) throw new Error('unreachable');
  return r.value;
}

function fullParams(m: Method, onlyRequired = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, rule] of Object.entries(PARAM_RULES[m] as Record<string, Rule>)) {
    if (onlyRequired && (rule.optional || rule.type === 'any')) continue;
    out[k] = GOOD[rule.type];
  }
  return out;
}

describe('protocol: METHODS and isMethod', () => {
  it('declares exactly the documented methods', () => {
    assert.deepEqual(Object.keys(METHODS).sort(), [...ALL_METHODS].sort());
    assert.deepEqual(Object.keys(PARAM_RULES).sort(), [...ALL_METHODS].sort());
  });

  it('declares exactly the documented parameters of every method', () => {
    for (const m of ALL_METHODS) assert.deepEqual(Object.keys(METHODS[m].params.entries).sort(), Object.keys(PARAM_RULES[m]).sort(), m);
  });

  it('isMethod accepts every declared method', () => {
    for (const m of ALL_METHODS) assert.equal(isMethod(m), true, m);
  });

  it('isMethod refuses unknown names, inherited Object properties and non-strings', () => {
    for (const v of [
      'nope',
      'Status',
      'layer',
      'layer.',
      '',
      'toString',
      'constructor',
      '__proto__',
      'hasOwnProperty',
      5,
      null,
      undefined,
      {},
    ]) {
      assert.equal(isMethod(v), false, String(v));
    }
  });

  it('exposes the protocol version and message limit', () => {
    assert.equal(CONTROL_PROTOCOL_VERSION, 1);
    assert.equal(MAX_CONTROL_MESSAGE, 256 * 1024);
  });
});

describe('protocol: checkRequest, per method', () => {
  for (const m of ALL_METHODS) {
    const rules = PARAM_RULES[m] as Record<string, Rule>;
    describe(m, () => {
      it('accepts every parameter with the right type and returns them unchanged', () => {
        const params = fullParams(m);
        assert.deepEqual(good(checkRequest(line({ id: 3, method: m, params }))), { id: 3, method: m, params });
      });

      it('accepts only the required parameters', () => {
        const params = fullParams(m, true);
        assert.deepEqual(good(checkRequest(line({ id: 4, method: m, params }))), { id: 4, method: m, params });
      });

      const required = Object.entries(rules).filter(([, r]) => !r.optional && r.type !== 'any');
      if (required.length === 0) {
        it('accepts a request without "params" as empty params', () => {
          assert.deepEqual(good(checkRequest(line({ id: 5, method: m }))), { id: 5, method: m, params: {} });
        });
      } else {
        it('refuses a request without "params", naming the first missing parameter', () => {
          const e = bad(checkRequest(line({ id: 5, method: m })));
          assert.equal(e.code, 'E_BAD_REQUEST');
          assert.equal(e.id, 5);
          assert.equal(e.message, `${m}: missing parameter "${required[0][0]}" (${required[0][1].type})`);
        });
      }

      for (const [key, rule] of required) {
        it(`refuses a missing "${key}" with the id echoed`, () => {
          const params = fullParams(m);
          delete params[key];
          const e = bad(checkRequest(line({ id: 6, method: m, params })));
          assert.deepEqual(e, { code: 'E_BAD_REQUEST', id: 6, message: `${m}: missing parameter "${key}" (${rule.type})` });
        });
      }

      for (const [key, rule] of Object.entries(rules)) {
        for (const w of WRONG[rule.type]) {
          it(`refuses "${key}" = ${JSON.stringify(w)} (must be ${rule.type})`, () => {
            const params = { ...fullParams(m), [key]: w };
            const e = bad(checkRequest(line({ id: 8, method: m, params })));
            assert.deepEqual(e, { code: 'E_BAD_REQUEST', id: 8, message: `${m}: parameter "${key}" must be ${rule.type}` });
          });
        }
      }

      it('refuses an unknown parameter by name', () => {
        const params = { ...fullParams(m), bogus: 1 };
        const e = bad(checkRequest(line({ id: 9, method: m, params })));
        assert.deepEqual(e, { code: 'E_BAD_REQUEST', id: 9, message: `${m}: unknown parameter "bogus"` });
      });
    });
  }
});

describe('protocol: checkRequest, framing and envelope', () => {
  it('accepts a minimal request', () => {
    assert.deepEqual(good(checkRequest('{"id":1,"method":"status"}')), { id: 1, method: 'status', params: {} });
  });

  it('accepts surrounding whitespace and ids 0 and negative', () => {
    assert.equal(good(checkRequest('  {"id":0,"method":"status"}  ')).id, 0);
    assert.equal(good(checkRequest('{"id":-12,"method":"status"}')).id, -12);
  });

  it('accepts params: {} for a method without parameters', () => {
    assert.deepEqual(good(checkRequest('{"id":1,"method":"view.list","params":{}}')).params, {});
  });

  for (const text of ['', 'hello', '{', '{"id":1,', "{'id':1}", '{"id":1,"method":"status"}}', 'undefined']) {
    it(`refuses the non-JSON line ${JSON.stringify(text)}`, () => {
      const e = bad(checkRequest(text));
      assert.equal(e.code, 'E_BAD_REQUEST');
      assert.match(e.message, /^message is not JSON: /);
      assert.equal(e.id, undefined);
    });
  }

  for (const text of ['[]', '[{"id":1,"method":"status"}]', '42', '"status"', 'null', 'true']) {
    it(`refuses the non-object message ${text}`, () => {
      assert.deepEqual(bad(checkRequest(text)), { code: 'E_BAD_REQUEST', message: 'message must be a JSON object', id: undefined });
    });
  }

  for (const id of [undefined, '1', 1.5, null, true, [1], {}]) {
    it(`refuses the id ${JSON.stringify(id) ?? '(missing)'} without echoing it`, () => {
      const e = bad(checkRequest(line({ id, method: 'status' })));
      assert.deepEqual(e, { code: 'E_BAD_REQUEST', message: 'message needs an integer "id"', id: undefined });
    });
  }

  it('checks the id before the method', () => {
    assert.equal(bad(checkRequest('{"method":"nope"}')).code, 'E_BAD_REQUEST');
  });

  for (const method of [
    'nope',
    'Status',
    'layer.delete',
    '',
    'toString',
    'constructor',
    '__proto__',
    'hasOwnProperty',
    5,
    null,
    ['status'],
  ]) {
    it(`refuses the unknown method ${JSON.stringify(method)} with E_UNKNOWN_METHOD and the id echoed`, () => {
      const e = bad(checkRequest(line({ id: 41, method, params: {} })));
      assert.deepEqual(e, { code: 'E_UNKNOWN_METHOD', id: 41, message: `unknown method ${JSON.stringify(method)}` });
    });
  }

  it('refuses a missing method with E_UNKNOWN_METHOD and the id echoed', () => {
    const e = bad(checkRequest('{"id":42}'));
    assert.equal(e.code, 'E_UNKNOWN_METHOD');
    assert.equal(e.id, 42);
  });

  for (const params of [null, [], 'x', 5, true]) {
    it(`refuses params ${JSON.stringify(params)} with the id echoed`, () => {
      const e = bad(checkRequest(line({ id: 43, method: 'status', params })));
      assert.deepEqual(e, { code: 'E_BAD_REQUEST', id: 43, message: 'status: "params" must be an object' });
    });
  }

  it('refuses a number that JSON turns into Infinity', () => {
    const e = bad(checkRequest('{"id":1,"method":"layer.create","params":{"name":"a","from":"/x","priority":1e400}}'));
    assert.equal(e.code, 'E_BAD_REQUEST');
    assert.match(e.message, /"priority" must be number/);
  });

  it('refuses null for an optional parameter (null is not "absent")', () => {
    const e = bad(checkRequest(line({ id: 1, method: 'view.add', params: { base: '/w', at: null } })));
    assert.equal(e.message, 'view.add: parameter "at" must be string');
  });

  it('accepts any value, or none, for a parameter of type "any"', () => {
    for (const spec of [null, 0, 'x', [], { format: 2 }]) {
      assert.deepEqual(good(checkRequest(line({ id: 1, method: 'layer.validate', params: { spec } }))).params, { spec });
    }
    assert.deepEqual(good(checkRequest(line({ id: 1, method: 'layer.validate', params: {} }))).params, {});
  });

  it('accepts an empty names list', () => {
    assert.deepEqual(good(checkRequest(line({ id: 1, method: 'activate', params: { names: [] } }))).params, { names: [] });
  });

  it('ignores extra envelope keys but not extra params', () => {
    assert.equal(good(checkRequest('{"id":1,"method":"status","trace":"x"}')).method, 'status');
  });

  for (const key of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__']) {
    it(`refuses the inherited Object property "${key}" as an unknown parameter`, () => {
      // Built as text: JSON.parse makes "__proto__" an own key, as a client could send it.
      const text = `{"id":44,"method":"layer.show","params":{"name":"x","${key}":"y"}}`;
      const e = bad(checkRequest(text));
      assert.deepEqual(e, { code: 'E_BAD_REQUEST', id: 44, message: `layer.show: unknown parameter "${key}"` });
    });
  }

  describe('size limit', () => {
    const head = '{"id":1,"method":"status"}';

    it(`accepts a line of exactly ${MAX_CONTROL_MESSAGE} bytes`, () => {
      const text = head + ' '.repeat(MAX_CONTROL_MESSAGE - head.length);
      assert.equal(Buffer.byteLength(text), MAX_CONTROL_MESSAGE);
      assert.equal(good(checkRequest(text)).method, 'status');
    });

    it('refuses one byte more with E_TOO_LARGE, naming the size and the limit', () => {
      const text = head + ' '.repeat(MAX_CONTROL_MESSAGE - head.length + 1);
      assert.deepEqual(bad(checkRequest(text)), {
        code: 'E_TOO_LARGE',
        message: `message of ${MAX_CONTROL_MESSAGE + 1} bytes exceeds the ${MAX_CONTROL_MESSAGE}-byte limit`,
        id: undefined,
      });
    });

    it('counts UTF-8 bytes, not characters', () => {
      const name = 'é'.repeat(Math.ceil(MAX_CONTROL_MESSAGE / 2));
      const text = line({ id: 1, method: 'layer.show', params: { name } });
      assert.ok(text.length < MAX_CONTROL_MESSAGE);
      const e = bad(checkRequest(text));
      assert.equal(e.code, 'E_TOO_LARGE');
      assert.ok(e.message.includes(`message of ${Buffer.byteLength(text)} bytes`), e.message);
    });

    it('checks the size before parsing', () => {
      assert.equal(bad(checkRequest('x'.repeat(MAX_CONTROL_MESSAGE + 1))).code, 'E_TOO_LARGE');
    });
  });

  it('never throws on random input', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const pieces = [
      '{',
      '}',
      '[',
      ']',
      '"id"',
      ':',
      '1',
      ',',
      '"method"',
      '"status"',
      '"params"',
      'null',
      '"layer.show"',
      '"name"',
      '1.5',
      '"__proto__"',
      'é',
      '\\u0000',
      ' ',
    ];
    for (let i = 0; i < 3000; i++) {
      let s = '';
      const n = rnd(14);
      for (let j = 0; j < n; j++) s += pieces[rnd(pieces.length)];
      const r = checkRequest(s);
      if (!r.ok) assert.ok(isErrorCode(r.error.code) && typeof r.error.message === 'string', s);
      else assert.ok(isMethod(r.value.method), s);
    }
  });
});

describe('protocol: checkIncoming', () => {
  it('accepts a success response, whatever the result', () => {
    for (const result of [null, 0, 'x', [], { a: 1 }, false]) {
      const r = checkIncoming(line({ id: 1, ok: true, result }));
      assert.deepEqual(r, { ok: true, value: { id: 1, ok: true, result } });
    }
  });

  it('refuses a success response without a result', () => {
    const e = bad(checkIncoming('{"id":1,"ok":true}'));
    assert.deepEqual(e, { code: 'E_BAD_REQUEST', message: 'agent sent an unrecognised message', id: undefined });
  });

  it('knows the codes of requirements and of validation warnings, and a problem with a severity', () => {
    for (const code of ['E_LAYER_REQUIRED', 'E_MAPPING_MISSING']) assert.ok(isErrorCode(code), code);
    const warning = { code: 'E_MAPPING_MISSING', message: 'layer.json: mappings[0].destination: x', severity: 'warning' };
    assert.deepEqual(v.parse(ProblemSchema, warning), warning);
    assert.equal(v.is(ProblemSchema, { ...warning, severity: 'fatal' }), false);
    const r = checkIncoming(line({ id: 3, ok: true, result: { problems: [warning] } }));
    assert.equal(r.ok, true);
  });

  it('accepts an error response with a known code', () => {
    for (const code of ErrorCodes) {
      const msg = { id: 2, ok: false, error: { code, message: 'boom', hint: 'do x' } };
      assert.deepEqual(checkIncoming(line(msg)), { ok: true, value: msg });
    }
  });

  for (const error of [{ code: 'E_NOPE', message: 'x' }, { code: 'E_IO' }, { code: 'E_IO', message: 5 }, { message: 'x' }, null, 'E_IO']) {
    it(`refuses the error ${JSON.stringify(error)}`, () => {
      assert.equal(bad(checkIncoming(line({ id: 2, ok: false, error }))).message, 'agent sent an unrecognised message');
    });
  }

  it('refuses responses with a non-number id or a non-boolean ok', () => {
    for (const msg of [
      { id: '1', ok: true, result: 1 },
      { ok: true, result: 1 },
      { id: 1, ok: 'true', result: 1 },
      { id: 1, ok: 1, result: 1 },
      { id: 1, result: 1 },
    ]) {
      assert.equal(bad(checkIncoming(line(msg))).code, 'E_BAD_REQUEST', JSON.stringify(msg));
    }
  });

  const status = { protocol: 1, pid: 7, home: '/h', socket: '/s', active: ['a'], layers: [], views: [] };

  it('accepts a state event', () => {
    const ev = { event: 'state', reason: 'activate', status };
    assert.deepEqual(checkIncoming(line(ev)), { ok: true, value: ev });
  });

  it('refuses an event without a whole status or of another kind', () => {
    const partial = { protocol: 1, active: ['a'] };
    for (const ev of [
      { event: 'state', reason: 'x' },
      { event: 'state', status: null },
      { event: 'state', status: 'up' },
      { event: 'other', status: {} },
      { event: 'state', reason: 'x', status: partial },
      { event: 'state', reason: 'x', status: { ...status, active: [1] } },
    ]) {
      assert.equal(bad(checkIncoming(line(ev))).message, 'agent sent an unrecognised message', JSON.stringify(ev));
    }
  });

  for (const text of ['', 'nope', '{"id":1', '{]']) {
    it(`refuses the non-JSON line ${JSON.stringify(text)}`, () => {
      const e = bad(checkIncoming(text));
      assert.equal(e.code, 'E_BAD_REQUEST');
      assert.match(e.message, /^agent sent non-JSON: /);
    });
  }

  for (const text of ['null', '1', '"x"', 'true']) {
    it(`refuses the non-object ${text}`, () => {
      assert.deepEqual(bad(checkIncoming(text)), { code: 'E_BAD_REQUEST', message: 'agent sent a non-object', id: undefined });
    });
  }

  it('refuses an array', () => {
    assert.equal(bad(checkIncoming('[{"id":1,"ok":true,"result":1}]')).code, 'E_BAD_REQUEST');
  });
});

describe('protocol: utf8Length', () => {
  const cases: Array<[string, number]> = [
    ['', 0],
    ['abc', 3],
    ['\u007f', 1],
    ['\u0080', 2],
    ['é', 2],
    ['\u07ff', 2],
    ['\u0800', 3],
    ['€', 3],
    ['\uffff', 3],
    ['\ud7ff', 3],
    ['\ue000', 3],
    ['\u{10000}', 4],
    ['😀', 4],
    ['\u{10ffff}', 4],
    ['a😀é€', 10],
  ];
  for (const [s, n] of cases) {
    it(`${JSON.stringify(s)} is ${n} bytes (same as Buffer.byteLength)`, () => {
      assert.equal(utf8Length(s), n);
      assert.equal(Buffer.byteLength(s, 'utf8'), n);
    });
  }

  it('agrees with Buffer.byteLength on 2,000 random well-formed strings', () => {
    let seed = 99;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const ranges: Array<[number, number]> = [
      [0, 0x80],
      [0x80, 0x800],
      [0x800, 0xd800],
      [0xe000, 0x10000],
      [0x10000, 0x110000],
    ];
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const len = rnd(20);
      for (let j = 0; j < len; j++) {
        const [lo, hi] = ranges[rnd(ranges.length)];
        s += String.fromCodePoint(lo + rnd(hi - lo));
      }
      assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
    }
  });
});
