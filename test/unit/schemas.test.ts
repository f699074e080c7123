/**
 * Unit tests for the message schemas (protocol/): the issue helper, control results and events, team
 * frames, the team file, webview messages and the agent's own files. Each family: a valid case and
 * several refusals (wrong type, missing field, unknown or extra field, over a limit).
 */
import assert from 'node:assert/strict';
import * as v from 'valibot';
import {
  AgentStateSchema,
  CloseCodes,
  LayerInfoSchema,
  LayerSpecSchema,
  SeenSchema,
  TeamConfigSchema,
  TeamSnapshotSchema,
  checkFrame,
  checkIncoming,
  checkResult,
  checkTeamFile,
  eventId,
  issueField,
  issueMessage,
  parseJson,
} from '../../protocol';
import { isHostMessage, isWebviewMessage } from '../../protocol/webview';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${'b'.repeat(64)}`;
const hlc = { wall: 1000, logical: 0, agent: 'a-1' };
const KEY = 'k'.repeat(43);
const SIG = 's'.repeat(86);
const event = {
  origin: 'a-1',
  seq: 1,
  tag: hlc,
  writes: [{ key: 'layer:gcc', value: { active: true } }],
  user: 'u',
  host: 'h',
  prev: [{ key: 'layer:gcc', value: { active: false } }],
  key: KEY,
  sig: SIG,
};
const layer = {
  format: 2,
  name: 'gcc',
  version: '',
  description: '',
  priority: 100,
  mappings: [{ original: '/opt/gcc', destination: '/' }],
  excludes: [],
  deletes: [],
};
const status = {
  protocol: 1,
  pid: 7,
  home: '/h',
  socket: '/s',
  active: ['gcc'],
  layers: [{ ...layer, active: true, writableBytes: 0 }],
  views: [],
};

/** The first problem's "field: reason", or '' when valid. */
function problem(schema: v.GenericSchema, value: unknown): string {
  const r = v.safeParse(schema, value);
  return r.success ? '' : issueMessage(r.issues[0], '');
}

describe('schemas: issues as "file: field: reason"', () => {
  const schema = v.object({
    mappings: v.array(v.object({ destination: v.string('must be a string') })),
    seen: v.record(v.pipe(v.string(), v.regex(/^a/, 'bad key')), v.number()),
  });

  it('joins the path with dots and brackets', () => {
    const r = v.safeParse(schema, { mappings: [{ destination: 'x' }, { destination: 5 }], seen: {} });
    assert.equal(r.success, false);
    assert.equal(issueField(r.issues![0]), 'mappings[1].destination');
    assert.equal(issueMessage(r.issues![0], '/f.json'), '/f.json: mappings[1].destination: must be a string');
  });

  it("reports a map's bad key on the map", () => {
    const r = v.safeParse(schema, { mappings: [], seen: { b: 1 } });
    assert.equal(issueMessage(r.issues![0], 'f'), 'f: seen: bad key');
  });

  it('parseJson names the file for bad JSON, and the field of every problem (up to 5)', () => {
    assert.throws(() => parseJson(AgentStateSchema, '{', '/h/state.json'), /^Error: \/h\/state\.json: not valid JSON: /);
    const views = Array.from({ length: 7 }, () => ({ base: 1 }));
    assert.throws(
      () => parseJson(AgentStateSchema, JSON.stringify({ format: 1, active: [], views }), '/h/state.json'),
      (e: Error) => {
        assert.ok(e.message.startsWith('/h/state.json: views[0].base: must be a string; /h/state.json: views[1].base'), e.message);
        assert.ok(e.message.endsWith('; and 2 more'), e.message);
        return true;
      },
    );
  });
});

describe('schemas: control results and events', () => {
  it('accepts a well-formed result as it came', () => {
    const r = checkResult('status', status);
    assert.ok(r.ok);
    assert.equal(r.value, status);
    assert.ok(checkResult('agent.stop', { stopping: true }).ok);
    assert.ok(checkResult('team.history', [event]).ok);
    assert.ok(checkResult('team.status', { joined: false }).ok);
  });

  it('ignores fields a newer agent may add', () => {
    assert.ok(checkResult('layer.rm', { removed: 'gcc', extra: 1 }).ok);
  });

  const cases: [Parameters<typeof checkResult>[0], unknown, string][] = [
    [
      'status',
      { ...status, layers: [{ ...layer, active: true }] },
      'agent sent a malformed status result: layers[0].writableBytes: must be an integer from 0 to',
    ],
    ['status', { ...status, pid: '7' }, 'agent sent a malformed status result: pid: must be an integer'],
    [
      'layer.list',
      [{ ...layer, name: 5, active: false, writableBytes: 0 }],
      'agent sent a malformed layer.list result: [0].name: must be a string',
    ],
    ['layer.list', {}, 'agent sent a malformed layer.list result: must be a list'],
    [
      'view.list',
      [{ base: '/b', mountpoint: '/b', inPlace: true, state: 'broken' }],
      'agent sent a malformed view.list result: [0].state: must be "mounted" or "failed"',
    ],
    ['agent.stop', { stopping: false }, 'agent sent a malformed agent.stop result: stopping: must be true'],
    ['team.history', [{ ...event, seq: 0 }], 'agent sent a malformed team.history result: [0].seq: must be an integer from 1 to'],
    [
      'layer.validate',
      { problems: [{ code: 'E_NOPE', message: 'x' }] },
      'agent sent a malformed layer.validate result: problems[0].code: must be a Strata error code',
    ],
  ];
  for (const [method, result, message] of cases) {
    it(`refuses a malformed ${method} result, naming the method and the field`, () => {
      const r = checkResult(method, result);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.error.code, 'E_BAD_REQUEST');
      assert.ok(r.error.message.startsWith(message), r.error.message);
    });
  }

  it('checks progress events', () => {
    const ev = { event: 'progress', task: 'import x', message: 'copying', done: 1, total: 2 };
    assert.deepEqual(checkIncoming(JSON.stringify(ev)), { ok: true, value: ev });
    for (const bad of [
      { ...ev, task: 1 },
      { ...ev, done: 'x' },
      { event: 'progress', message: 'm' },
    ]) {
      assert.equal(checkIncoming(JSON.stringify(bad)).ok, false, JSON.stringify(bad));
    }
  });
});

describe('schemas: team frames', () => {
  const frames: Record<string, unknown> = {
    hello: { t: 'hello', v: 2, team: 'acme', agent: 'a-1', nonce: HEX, key: KEY },
    challenge: { t: 'challenge', v: 2, team: 'acme', agent: 'a-1', nonce: HEX, proof: HEX, key: KEY, sig: SIG },
    auth: { t: 'auth', proof: HEX, sig: SIG },
    welcome: { t: 'welcome' },
    have: { t: 'have', seen: { 'a-1': 3 } },
    synced: { t: 'synced', seen: { 'a-1': 1 } },
    event: { t: 'event', event: { ...event, reverts: 'b:2' } },
    presence: {
      t: 'presence',
      presence: {
        agent: 'a-1',
        pseq: 1,
        user: 'u',
        host: 'h',
        active: ['gcc'],
        held: [],
        applied: { 'a-1': 1 },
        busy: [],
        has: { gcc: DIGEST },
        at: 5,
        key: KEY,
        sig: SIG,
      },
    },
    pull: { t: 'pull', to: 'b', from: 'a-1', layer: 'gcc', digest: DIGEST, offset: 0 },
    chunk: { t: 'chunk', to: 'b', from: 'a-1', layer: 'gcc', digest: DIGEST, offset: 0, total: 3, sha256: HEX, data: 'AAAA', sig: SIG },
    'pull-error': { t: 'pull-error', to: 'b', from: 'a-1', layer: 'gcc', message: 'gone' },
    error: { t: 'error', code: '4002', message: 'malformed hello' },
  };
  for (const [t, f] of Object.entries(frames)) {
    it(`accepts a ${t} frame`, () => {
      assert.deepEqual(checkFrame(JSON.stringify(f)), { ok: true, frame: f });
    });
  }

  it('accepts an extra field and leaves it out of the frame', () => {
    assert.deepEqual(checkFrame(JSON.stringify({ ...(frames.hello as object), colour: 'red' })), { ok: true, frame: frames.hello });
  });

  const refusals: [string, unknown, string][] = [
    ['a wrong type', { ...(frames.hello as object), v: '1' }, 'malformed hello: v: must be a non-negative integer'],
    ['a short nonce', { ...(frames.hello as object), nonce: 'abc' }, 'malformed hello: nonce: must be 64 hex digits'],
    [
      'a missing field',
      { t: 'pull', to: 'b', from: 'a-1', layer: 'gcc', offset: 0 },
      'malformed pull: digest: must be a string of at most 80 characters',
    ],
    ['a bad layer name', { ...(frames.pull as object), layer: '-x' }, 'malformed pull: layer: must be a layer name'],
    ['seq 0', { t: 'event', event: { ...event, seq: 0 } }, 'malformed event: event.seq: must be an integer from 1 to 1099511627776'],
    [
      'seq 2^53-1',
      { t: 'event', event: { ...event, seq: 2 ** 53 - 1 } },
      'malformed event: event.seq: must be an integer from 1 to 1099511627776',
    ],
    ['a wall of 2^53-1', { t: 'event', event: { ...event, tag: { ...hlc, wall: 2 ** 53 - 1 } } }, 'malformed event: event.tag.wall'],
    [
      'an event without a signature',
      { t: 'event', event: { ...event, sig: undefined } },
      'malformed event: event.sig: must be a signature',
    ],
    [
      'a presence with a short key',
      { t: 'presence', presence: { ...(frames.presence as { presence: object }).presence, key: 'abc' } },
      'malformed presence: presence.key',
    ],
    [
      'an event without writes',
      { t: 'event', event: { ...event, writes: [] } },
      'malformed event: event.writes: an event needs at least one write',
    ],
    [
      '65 writes',
      { t: 'event', event: { ...event, writes: Array.from({ length: 65 }, (_, i) => ({ key: `layer:l${i}`, value: { active: true } })) } },
      'malformed event: event.writes: at most 64 writes per event, got 65',
    ],
    [
      'a write whose value does not fit its key',
      { t: 'event', event: { ...event, writes: [{ key: 'slot:cc', value: { active: true } }] } },
      'malformed event: event.writes[0]: bad value for slot:cc',
    ],
    [
      'a user over 64 characters',
      { t: 'presence', presence: { ...(frames.presence as { presence: object }).presence, user: 'u'.repeat(65) } },
      'malformed presence: presence.user: must be a string of at most 64 characters',
    ],
    ['a seen vector past MAX_SEQ', { t: 'synced', seen: { x: 2 ** 41 } }, 'malformed synced: seen.x: must be an integer from 0 to'],
    ['a list for a map', { t: 'have', seen: [] }, 'malformed have: seen: must be an object'],
  ];
  for (const [what, f, message] of refusals) {
    it(`refuses ${what}, naming the field`, () => {
      const c = checkFrame(JSON.stringify(f));
      assert.equal(c.ok, false);
      if (c.ok) return;
      assert.equal(c.close, CloseCodes.BAD_FRAME);
      assert.ok(c.message.startsWith(message), c.message);
      assert.ok(c.message.length <= 200);
    });
  }

  it('refuses unknown frame types (inherited names too) with UNKNOWN_FRAME', () => {
    for (const t of ['nope', 'constructor', 'toString']) {
      const c = checkFrame(JSON.stringify({ t }));
      assert.deepEqual(c, { ok: false, close: CloseCodes.UNKNOWN_FRAME, message: `unknown frame type ${JSON.stringify(t)}` });
    }
  });

  it('refuses frames that are no object with a type', () => {
    for (const text of ['[]', '{"t":1}', 'null', '"hello"']) {
      assert.deepEqual(checkFrame(text), { ok: false, close: CloseCodes.BAD_FRAME, message: 'frame is not an object with a type' }, text);
    }
  });

  it('bounds what a frame may carry: 10000 origins', () => {
    assert.equal(problem(TeamSnapshotSchema, { seen: {}, events: [event] }), '');
    const seen = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`a${i}`, 1]));
    assert.equal(problem(SeenSchema, seen), 'must have at most 10000 origins');
  });

  it('one eventId for every event', () => {
    assert.equal(eventId(event), 'a-1:1');
  });
});

describe('schemas: the team file', () => {
  const good = {
    format: 1,
    team: 'acme',
    relays: ['ws://relay:7450'],
    layers: { gcc: { digest: DIGEST }, clang: { digest: DIGEST, version: '17' } },
    defaults: ['gcc'],
    slots: { cc: ['gcc', 'clang'] },
  };

  it('accepts a valid file and fills optional fields', () => {
    assert.deepEqual(checkTeamFile(good, 'f'), { team: good, problems: [] });
    assert.deepEqual(checkTeamFile({ format: 1, team: 'acme', relays: [] }, 'f'), {
      team: { format: 1, team: 'acme', relays: [], layers: {}, defaults: [], slots: {} },
      problems: [],
    });
  });

  const bad: [string, unknown, string][] = [
    ['not an object', [], 'f: must be a JSON object'],
    [
      'a wrong type',
      { ...good, relays: 'ws://x' },
      'f: relays: must be a list of ws://, wss:// (Strata relays) or nats://, tls://, nats+ws://, nats+wss:// (NATS) addresses',
    ],
    ['a missing field', { ...good, team: undefined }, 'f: team: must be a name (letters, digits, . _ + -)'],
    ['a bad digest', { ...good, layers: { gcc: { digest: 'md5:1' } }, defaults: [], slots: {} }, 'f: layers: must map layer names to'],
    ['over 256 defaults', { ...good, defaults: Array.from({ length: 257 }, () => 'gcc') }, 'f: defaults: must be a list of layer names'],
    ['a default that is no team layer', { ...good, defaults: ['ghost'] }, 'f: defaults: "ghost" is not a team layer'],
    ['two defaults in one slot', { ...good, defaults: ['gcc', 'clang'] }, 'f: defaults: "gcc" and "clang" are all in slot cc'],
  ];
  for (const [what, raw, message] of bad) {
    it(`refuses ${what}`, () => {
      const { team, problems } = checkTeamFile(raw, 'f');
      assert.equal(team, undefined);
      assert.ok(problems[0].startsWith(message), problems.join('\n'));
    });
  }
});

describe('schemas: webview messages and the layer shape', () => {
  it('accepts every message of both directions', () => {
    for (const m of [
      { type: 'ready', v: 1 },
      { type: 'reload' },
      { type: 'validate', requestId: 1, spec: layer },
      { type: 'save', requestId: 2, name: 'gcc', spec: layer },
      { type: 'browse', requestId: 3, kind: 'destination', layer: 'gcc' },
    ])
      assert.equal(isWebviewMessage(m), true, JSON.stringify(m));
    for (const m of [
      { type: 'load', layer: null, active: false, canRename: false, connected: false, notice: 'agent down' },
      { type: 'load', layer, active: true, canRename: false, connected: true },
      { type: 'validated', requestId: 1, problems: [{ field: 'name', code: 'E_LAYER_INVALID', message: 'm' }] },
      { type: 'saved', requestId: 2, layer },
      { type: 'saveFailed', requestId: 2, problems: [] },
      { type: 'picked', requestId: 3, value: null, problem: 'outside' },
      { type: 'error', message: 'boom' },
    ])
      assert.equal(isHostMessage(m), true, JSON.stringify(m));
  });

  it('lets a NaN priority through for the agent to name', () => {
    assert.equal(isWebviewMessage({ type: 'validate', requestId: 1, spec: { ...layer, priority: NaN } }), true);
  });

  it('refuses wrong types, missing fields, over-limit values and unknown types', () => {
    for (const m of [
      { type: 'save', requestId: -1, name: 'gcc', spec: layer },
      { type: 'save', requestId: 1, name: 'x'.repeat(257), spec: layer },
      { type: 'validate', requestId: 1, spec: { ...layer, mappings: undefined } },
      { type: 'validate', requestId: 1, spec: { ...layer, excludes: ['x'.repeat(4097)] } },
      { type: 'validate', requestId: 1, spec: { ...layer, format: 3 } },
      { type: 'browse', requestId: 1, kind: 'elsewhere', layer: 'x' },
      { type: 'ready' },
      { type: 'eval', code: 'x' },
      [{ type: 'reload' }],
    ])
      assert.equal(isWebviewMessage(m), false, JSON.stringify(m));
    for (const m of [
      { type: 'validated', requestId: 2, problems: [{ field: 'name', code: 'E_NOPE', message: 'm' }] },
      { type: 'load', layer, active: 'yes', canRename: false, connected: true },
      { type: 'picked', requestId: 3 },
      { type: 'error', message: 'x'.repeat(65537) },
    ])
      assert.equal(isHostMessage(m), false, JSON.stringify(m));
  });

  it('declares LayerInfo as the spec plus the agent state', () => {
    assert.equal(problem(LayerInfoSchema, { ...layer, active: true, writableBytes: 0 }), '');
    assert.equal(problem(LayerInfoSchema, layer), 'active: must be true or false');
    assert.equal(
      problem(LayerSpecSchema, { ...layer, mappings: [{ original: '/a' }] }),
      'mappings[0].destination: must be a string of at most 4096 characters',
    );
  });
});

describe("schemas: the agent's files", () => {
  it('state.json', () => {
    assert.equal(problem(AgentStateSchema, { format: 1, active: ['gcc'], views: [{ base: '/w' }, { base: '/v', at: '/m' }] }), '');
    assert.equal(problem(AgentStateSchema, { format: 2, active: [], views: [] }), 'format: must be 1, got 2');
    assert.equal(problem(AgentStateSchema, { format: 1, active: [3], views: [] }), 'active[0]: must be a string');
    assert.equal(problem(AgentStateSchema, { format: 1, active: [] }), 'views: must be a list');
    assert.equal(problem(AgentStateSchema, 'x'), 'must be a JSON object');
  });

  it('team.json', () => {
    const spec = { format: 1, team: 'acme', relays: [], layers: { gcc: { digest: DIGEST } }, defaults: [], slots: {} };
    const cfg = {
      format: 1,
      agentId: 'me-1a2b3c4d',
      name: 'me',
      teamFile: '/r/strata.team.json',
      spec,
      relays: ['ws://x:1'],
      listen: null,
      held: ['gcc'],
    };
    assert.equal(problem(TeamConfigSchema, cfg), '');
    assert.equal(problem(TeamConfigSchema, { ...cfg, agentId: 'has space' }), 'agentId: must be an agent id (1-64 of A-Z a-z 0-9 . _ : -)');
    assert.equal(problem(TeamConfigSchema, { ...cfg, listen: undefined }), 'listen: must be a string');
    assert.equal(
      problem(TeamConfigSchema, { ...cfg, spec: { ...spec, relays: 'x' } }),
      'spec.relays: must be a list of ws://, wss:// (Strata relays) or nats://, tls://, nats+ws://, nats+wss:// (NATS) addresses',
    );
    assert.equal(problem(TeamConfigSchema, { ...cfg, held: ['-x'] }), 'held[0]: must be a layer name (letters, digits, . _ + -; up to 64)');
  });
});
