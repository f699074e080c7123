/** NATS transport pieces that need no server: names, the team MAC, credentials, error messages. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bucketBase, bucketsOf, kvKey, registerOf, seedsOf, serversOf } from '../../daemon/team/nats/names';
import { openEvent, openEventSigned, openPresenceSigned, sealEvent, sealPresence } from '../../daemon/team/nats/seal';
import { connectError, readCredentials } from '../../daemon/team/nats/connect';
import { Watching } from '../../daemon/team/nats/watch';
import { Identity, KeyRing } from '../../daemon/team/identity';
import { isNatsUrl } from '../../protocol';

const KEY = Buffer.alloc(32, 7);

describe('team over NATS: names', () => {
  it('maps register keys to KV keys and back, escaping what KV keys refuse', () => {
    for (const r of ['layer:node20', 'slot:node', 'layer:g++.13', 'layer:a=b', 'slot:x_y-z']) {
      const k = kvKey(r);
      assert.match(k, /^(layer|slot)\.[A-Za-z0-9_=-]+$/);
      assert.equal(registerOf(k), r);
    }
    assert.equal(kvKey('layer:g++.13'), 'layer.g=2b=2b=2e13');
    assert.equal(registerOf('agent.X'), null);
    assert.equal(registerOf('layer.a.b'), null);
  });

  it('names buckets after the team, with a hash for names buckets refuse', () => {
    assert.deepEqual(bucketsOf('acme'), { decisions: 'strata-acme', presence: 'strata-acme-presence', layers: 'strata-acme-layers' });
    assert.match(bucketBase('a.b'), /^strata-a_b-[0-9a-f]{8}$/);
    assert.notEqual(bucketBase('a.b'), bucketBase('a+b'));
  });

  it('tells NATS addresses from Strata relays, and gives the client its servers', () => {
    for (const u of ['nats://h:4222', 'tls://h:4222', 'nats+ws://h:8080', 'nats+wss://h:443']) assert.ok(isNatsUrl(u), u);
    for (const u of ['ws://h:7450', 'wss://h', 'http://h', 'nats://', 'nats://h/x']) assert.ok(!isNatsUrl(u), u);
    assert.deepEqual(serversOf(['tls://a:1', 'nats://b:2']), { servers: ['nats://a:1', 'nats://b:2'], websocket: false, tls: true });
    assert.deepEqual(serversOf(['nats+wss://a:443']), { servers: ['wss://a:443'], websocket: true, tls: true });
    assert.throws(() => serversOf(['nats://a:1', 'nats+ws://b:2']), /over TCP and over WebSocket/);
  });

  it("dials the server it joined through first, then the team file's other servers of the same kind", () => {
    const file = ['nats://a:1', 'nats://b:2', 'ws://relay:7450', 'nats+wss://c:443'];
    assert.deepEqual(seedsOf(['nats://b:2'], file), ['nats://b:2', 'nats://a:1']);
    assert.deepEqual(seedsOf(['nats+wss://d:443'], file), ['nats+wss://d:443', 'nats+wss://c:443']);
    assert.deepEqual(seedsOf(['tls://e:4222'], []), ['tls://e:4222']);
  });
});

describe('team over NATS: the team MAC', () => {
  const id = Identity.generate();
  const ev = id.signEvent('acme', {
    origin: id.id,
    seq: 1,
    tag: { wall: 1, logical: 0, agent: id.id },
    writes: [{ key: 'layer:a', value: { active: true } }],
    user: 'u',
    host: 'h',
    prev: [{ key: 'layer:a', value: { active: false } }],
  });

  it('opens what a member sealed, and refuses another key, another team or a changed event', () => {
    assert.deepEqual(openEvent(KEY, 'acme', sealEvent(KEY, 'acme', ev)), ev);
    assert.match(String(openEvent(Buffer.alloc(32, 8), 'acme', sealEvent(KEY, 'acme', ev))), /team MAC does not hold/);
    assert.match(String(openEvent(KEY, 'globex', sealEvent(KEY, 'acme', ev))), /team MAC does not hold/);
    const v = JSON.parse(Buffer.from(sealEvent(KEY, 'acme', ev)).toString());
    v.event.writes[0].value.active = false;
    assert.match(String(openEvent(KEY, 'acme', Buffer.from(JSON.stringify(v)))), /team MAC does not hold/);
    assert.match(String(openEvent(KEY, 'acme', Buffer.from('nope'))), /not JSON/);
    assert.match(String(openEvent(KEY, 'acme', Buffer.from('{"event":1}'))), /malformed/);
  });

  /** A presence signed by id. */
  const presence = () =>
    id.signPresence('acme', { agent: id.id, pseq: 1, user: 'u', host: 'h', active: [], held: [], applied: {}, busy: [], has: {}, at: 1 });

  it('hands back the bytes the origin signed: its signature checks against them, a member-sealed forgery does not', () => {
    const ring = new KeyRing();
    const o = openEventSigned(KEY, 'acme', sealEvent(KEY, 'acme', ev));
    assert.ok(typeof o !== 'string');
    assert.equal(ring.verify(ev.origin, ev.key, o.signed, ev.sig), null);
    // The MAC does not cover the signature: a member may seal another's event with a wrong one.
    const other = Identity.generate();
    const forged = { ...ev, writes: [{ key: 'layer:a', value: { active: false } }] };
    const f = openEventSigned(KEY, 'acme', sealEvent(KEY, 'acme', { ...forged, sig: other.sign(Buffer.from('x')) }));
    assert.ok(typeof f !== 'string');
    assert.match(String(ring.verify(f.value.origin, f.value.key, f.signed, f.value.sig)), /does not verify/);
    const p = presence();
    const op = openPresenceSigned(KEY, 'acme', sealPresence(KEY, 'acme', p));
    assert.ok(typeof op !== 'string');
    assert.equal(ring.verify(p.agent, p.key, op.signed, p.sig), null);
    assert.notEqual(ring.verify(p.agent, p.key, o.signed, p.sig), null);
  });

  it('seals presence under its own domain', () => {
    const p = presence();
    const opened = openPresenceSigned(KEY, 'acme', sealPresence(KEY, 'acme', p));
    assert.ok(typeof opened !== 'string', String(opened));
    assert.deepEqual(opened.value, p);
    assert.match(String(openPresenceSigned(KEY, 'acme', sealEvent(KEY, 'acme', ev))), /malformed/);
  });
});

describe('team over NATS: credentials and errors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-nats-unit-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string, mode = 0o600) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text, { mode });
    fs.chmodSync(f, mode);
    return f;
  };

  it('reads a user and password, a token, an nkey seed; refuses an open file and an unknown form', () => {
    assert.ok(readCredentials(file('u.json', '{"user":"a","password":"b"}')).authenticator);
    assert.ok(readCredentials(file('t.json', '{"token":"t"}')).authenticator);
    assert.ok(readCredentials(file('seed', `SU${'A'.repeat(56)}\n`)).authenticator);
    assert.equal(readCredentials(file('ca.json', '{"ca":"/x.pem"}')).ca, '/x.pem');
    assert.throws(
      () => readCredentials(file('open.json', '{"token":"t"}', 0o644)),
      /E_TEAM_SECRET|accessible by group or others; run: chmod 600/,
    );
    assert.throws(() => readCredentials(file('bad.json', '{"pass":"x"}')), /must be \{"user", "password"\}/);
  });

  it('explains a refusal: E_TEAM_CONNECT naming the server, the file and what to fix', () => {
    const e = connectError(
      ['nats://h:1'],
      { file: '/c.json' },
      Object.assign(new Error('Authorization Violation'), { name: 'AuthorizationError' }),
    );
    assert.equal(e.code, 'E_TEAM_CONNECT');
    assert.match(e.message, /the NATS server at nats:\/\/h:1 refused this agent's credentials from \/c\.json/);
    assert.match(e.hint ?? '', /Check the user and password .* in \/c\.json/);
    const down = connectError(['nats://h:1'], null, new Error('ECONNREFUSED'));
    assert.match(down.message, /cannot reach the NATS server at nats:\/\/h:1/);
  });
});

/** A watch fed by the test: push() an entry, fail() it, end it with stop(). */
class FakeWatch implements AsyncIterable<number> {
  private readonly queue: number[] = [];
  private wake: (() => void) | null = null;
  private error: Error | null = null;
  stopped = false;
  push(n: number): void {
    this.queue.push(n);
    this.wake?.();
  }
  fail(e: Error): void {
    this.error = e;
    this.wake?.();
  }
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<number> {
    for (;;) {
      if (this.error) throw this.error;
      const n = this.queue.shift();
      if (n !== undefined) yield n;
      else if (this.stopped) return;
      else await new Promise<void>((r) => (this.wake = r));
    }
  }
}

describe('team over NATS: one live watch (Watching)', () => {
  const tick = () => new Promise((r) => setImmediate(r));

  it('stops the watch it replaces and reads only the new one; logs a failure unless stopped', async () => {
    const logs: string[] = [];
    let stopped = false;
    const w = new Watching<number>(
      'the test bucket',
      (m) => logs.push(m),
      () => stopped,
    );
    const read: string[] = [];
    const first = new FakeWatch();
    w.follow(first, (n) => read.push(`first ${n}`));
    first.push(1);
    await tick();
    first.push(2); // arrives as the watch is replaced: not read
    const second = new FakeWatch();
    w.follow(second, (n) => read.push(`second ${n}`));
    assert.equal(first.stopped, true);
    second.push(3);
    await tick();
    assert.deepEqual(read, ['first 1', 'second 3']);
    second.fail(new Error('consumer gone'));
    await tick();
    assert.deepEqual(logs, ['[team] watching the test bucket stopped: consumer gone']);
    const third = new FakeWatch();
    w.follow(third, () => {});
    stopped = true;
    w.stop();
    third.fail(new Error('closed'));
    await tick();
    assert.equal(third.stopped, true);
    assert.equal(logs.length, 1);
  });
});
