/**
 * Bad peers and bad networks against a real relay and a real agent: wrong secret, replayed
 * handshakes, oversized, garbled and unknown frames, a flood of connections, duplicated and
 * reordered events, and a corrupted chunk during a layer pull.
 */
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { WebSocket } from 'ws';
import { execFileSync } from 'child_process';
import { Env, makeEnv, writeTree } from './helpers';
import { Relay, eventually, startRelay, writeSecret } from './team-helpers';
import { clientProof, deriveKey, newNonce } from '../../daemon/team/auth';
import { digestLayerDir } from '../../daemon/team/digest';
import { LayerStore } from '../../daemon/store';
import { CHUNK_BYTES, CloseCodes, Frame, Hlc, RegisterWrite, TeamEvent, TeamStatus } from '../../protocol';

/** A hand-driven peer: speaks the wire protocol directly, so a test can misbehave on purpose. */
class RawPeer {
  ws: WebSocket;
  frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  opened: Promise<void>;
  nonce = newNonce();
  constructor(
    url: string,
    readonly agent = `raw-${crypto.randomBytes(3).toString('hex')}`,
  ) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on('message', (d) => {
      try {
        this.frames.push(JSON.parse(String(d)) as Frame);
      } catch {
        /* not ours to judge */
      }
    });
    this.ws.on('close', (code, reason) => (this.closed = { code, reason: String(reason) }));
    this.ws.on('error', () => {});
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', () => res());
      this.ws.once('error', rej);
      this.ws.once('unexpected-response', (_req, r) => rej(new Error(`HTTP ${r.statusCode}`)));
    });
  }
  send(f: unknown): void {
    this.ws.send(typeof f === 'string' ? f : JSON.stringify(f));
  }
  next<T extends Frame['t']>(t: T): Promise<Extract<Frame, { t: T }>> {
    return eventually(
      `a ${t} frame`,
      () => {
        const i = this.frames.findIndex((f) => f.t === t);
        if (i < 0) {
          if (this.closed) throw new Error(`closed ${this.closed.code} ${this.closed.reason}`);
          return null;
        }
        return this.frames.splice(i, 1)[0] as Extract<Frame, { t: T }>;
      },
      5000,
    );
  }
  /** hello → challenge → auth (with `key`, or a wrong proof) → welcome. */
  async handshake(team: string, key: Buffer | null): Promise<void> {
    await this.opened;
    this.send({ t: 'hello', v: 1, team, agent: this.agent, nonce: this.nonce });
    const ch = await this.next('challenge');
    const proof = key ? clientProof(key, team, ch.nonce, this.nonce, this.agent, ch.agent) : 'ab'.repeat(32);
    this.send({ t: 'auth', proof });
    if (key) await this.next('welcome');
  }
  whenClosed(): Promise<{ code: number; reason: string }> {
    return eventually('the connection to close', () => this.closed, 10000);
  }
  close(): void {
    this.ws.terminate();
  }
}

describe('team: bad peers get nothing, and everyone else is unaffected', function () {
  this.timeout(120000);
  let dir: string;
  let secret: string;
  let relay: Relay;
  let key: Buffer;
  let good: RawPeer;
  const TEAM = 'acme';

  before(async () => {
    dir = fs.mkdtempSync('/tmp/strata-peers-');
    secret = writeSecret(dir);
    relay = await startRelay(secret, ['--team', TEAM]);
    key = deriveKey(Buffer.from('correct horse battery staple 2026'), TEAM);
    good = new RawPeer(relay.url);
    await good.handshake(TEAM, key);
    await good.next('have');
  });
  after(() => {
    good?.close();
    relay?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The relay still serves the good peer: a frame from a second good peer reaches it. */
  async function stillServing(): Promise<void> {
    const other = new RawPeer(relay.url);
    await other.handshake(TEAM, key);
    const ev = event(other.agent, 1, [{ key: 'layer:probe', value: { active: true } }]);
    other.send({ t: 'event', event: ev });
    await eventually('the good peer to receive the probe', () =>
      good.frames.some((f) => f.t === 'event' && f.event.origin === other.agent),
    );
    other.close();
  }

  it('refuses a peer with the wrong secret, and tells a client when the relay has the wrong one', async () => {
    const bad = new RawPeer(relay.url);
    await bad.handshake(TEAM, deriveKey(Buffer.from('not the team secret at all'), TEAM)).catch(() => {});
    const c = await bad.whenClosed();
    assert.strictEqual(c.code, CloseCodes.AUTH_FAILED);
    assert.ok(!bad.frames.some((f) => f.t === 'snapshot' || f.t === 'event'), 'nothing leaked before authentication');
    await stillServing();
  });

  it('refuses a replayed hello and a replayed auth proof', async () => {
    const first = new RawPeer(relay.url);
    await first.opened;
    first.send({ t: 'hello', v: 1, team: TEAM, agent: first.agent, nonce: first.nonce });
    const ch = await first.next('challenge');
    const proof = clientProof(key, TEAM, ch.nonce, first.nonce, first.agent, ch.agent);
    first.close();
    // Replay the same hello: the nonce was seen.
    const replay = new RawPeer(relay.url, first.agent);
    await replay.opened;
    replay.send({ t: 'hello', v: 1, team: TEAM, agent: first.agent, nonce: first.nonce });
    assert.strictEqual((await replay.whenClosed()).code, CloseCodes.AUTH_FAILED);
    // Replay the captured proof against a fresh challenge: it was bound to the old nonces.
    const again = new RawPeer(relay.url, first.agent);
    await again.opened;
    again.send({ t: 'hello', v: 1, team: TEAM, agent: first.agent, nonce: newNonce() });
    await again.next('challenge');
    again.send({ t: 'auth', proof });
    assert.strictEqual((await again.whenClosed()).code, CloseCodes.AUTH_FAILED);
    await stillServing();
  });

  it('closes only the connection that sends an oversized, garbled, binary or unknown frame', async () => {
    const cases: [string, (p: RawPeer) => void, number][] = [
      ['oversized', (p) => p.send('x'.repeat(100 * 1024)), 1009],
      ['garbled', (p) => p.send('{{{ not json'), CloseCodes.BAD_FRAME],
      ['binary', (p) => p.ws.send(Buffer.from([1, 2, 3])), CloseCodes.BAD_FRAME],
      ['unknown', (p) => p.send({ t: 'format-disk' }), CloseCodes.UNKNOWN_FRAME],
      ['malformed event', (p) => p.send({ t: 'event', event: { origin: 'x', seq: -1 } }), CloseCodes.BAD_FRAME],
    ];
    for (const [name, misbehave, code] of cases) {
      const p = new RawPeer(relay.url);
      await p.handshake(TEAM, key);
      misbehave(p);
      assert.strictEqual((await p.whenClosed()).code, code, name);
    }
    await stillServing();
  });

  it('survives a flood of connections that never authenticate', async () => {
    const flood: RawPeer[] = [];
    for (let i = 0; i < 150; i++) flood.push(new RawPeer(relay.url));
    const results = await Promise.allSettled(flood.map((p) => p.opened));
    const refused = results.filter((r) => r.status === 'rejected').length;
    assert.ok(refused >= 150 - 64, `expected the relay to refuse connections beyond its pending limit, refused ${refused}`);
    await stillServing().catch(async () => {
      // The pending slots may all be taken right now; they time out after the handshake deadline.
      await new Promise((r) => setTimeout(r, 6000));
      await stillServing();
    });
    for (const p of flood) p.close();
  });

  it('closes a peer that floods frames beyond the rate limit', async () => {
    const p = new RawPeer(relay.url);
    await p.handshake(TEAM, key);
    for (let i = 0; i < 5000 && !p.closed; i++) p.send({ t: 'error', code: 'x', message: 'noise' });
    assert.strictEqual((await p.whenClosed()).code, CloseCodes.RATE_LIMITED);
    await stillServing();
  });
});

function event(origin: string, seq: number, writes: RegisterWrite[], wall = Date.now()): TeamEvent {
  const tag: Hlc = { wall, logical: 0, agent: origin };
  return { origin, seq, tag, writes, user: 'mallory', host: 'test', prev: writes.map((w) => ({ key: w.key, value: { active: false } })) };
}

describe('team: duplicated and reordered delivery, corrupted chunks', function () {
  this.timeout(120000);
  let dir: string;
  let secret: string;
  let relay: Relay;
  let key: Buffer;
  let e: Env;
  let teamFile: string;
  let digest: string;
  let archive: string;
  const TEAM = 'acme';
  const NODE20 = '#!/bin/sh\necho v20\n';

  before(async () => {
    dir = fs.mkdtempSync('/tmp/strata-dup-');
    secret = writeSecret(dir);
    relay = await startRelay(secret, ['--team', TEAM]);
    key = deriveKey(Buffer.from('correct horse battery staple 2026'), TEAM);
    // The layer the agent lacks, packed the way a teammate would serve it.
    writeTree(path.join(dir, 'src18'), { 'bin/node': '#!/bin/sh\necho v18\n' });
    writeTree(path.join(dir, 'src20'), { 'bin/node': NODE20, 'lib/blob': crypto.randomBytes(3 * CHUNK_BYTES + 123).toString('hex') });
    const store = new LayerStore(path.join(dir, 'peer-home'));
    await store.create('node20', path.join(dir, 'src20'), { version: '20' });
    await store.create('node18', path.join(dir, 'src18'), { version: '18' });
    digest = await digestLayerDir(store.dir('node20'));
    archive = path.join(dir, 'node20.tar.gz');
    await store.exportTo('node20', archive);
    teamFile = path.join(dir, 'strata.team.json');
    fs.writeFileSync(
      teamFile,
      JSON.stringify({
        format: 1,
        team: TEAM,
        relays: [relay.url],
        layers: { node20: { digest }, node18: { digest: await digestLayerDir(store.dir('node18')) } },
        defaults: [],
        slots: {},
      }),
    );
    e = makeEnv('strata-dup-agent-');
    writeTree(e.base, { 'bin/node': '#!/bin/sh\necho system\n' });
    await e.ok('layer', 'create', 'node18', '--from', path.join(dir, 'src18'), '--version', '18');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    await e.ok('team', 'join', relay.url, '--secret-file', secret, '--team-file', teamFile, '--name', 'erin');
  });
  after(async () => {
    await e?.cleanup();
    relay?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('applies each decision exactly once, whatever the order and however often it arrives', async () => {
    const p = new RawPeer(relay.url, 'mallory-1');
    await p.handshake(TEAM, key);
    const t0 = Date.now();
    const e1 = event(p.agent, 1, [{ key: 'layer:node18', value: { active: true } }], t0);
    const e2 = event(p.agent, 2, [{ key: 'layer:node18', value: { active: false } }], t0 + 1);
    const e3 = event(p.agent, 3, [{ key: 'layer:node18', value: { active: true } }], t0 + 2);
    for (const ev of [e3, e1, e3, e2, e1, e2, e3]) p.send({ t: 'event', event: ev });
    const h = await eventually('the agent to record three decisions', async () => {
      const hist = await e.json<TeamEvent[]>('team', 'history');
      return hist.filter((x) => x.origin === p.agent).length >= 3 ? hist : null;
    });
    const mine = h
      .filter((x) => x.origin === p.agent)
      .map((x) => x.seq)
      .sort();
    assert.deepStrictEqual(mine, [1, 2, 3], 'each (origin, seq) once');
    // The newest tag wins, even though it arrived first.
    await eventually('node18 active', async () => (await e.json<{ active: string[] }>('status')).active.includes('node18'));
    assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'bin/node'), 'utf8'), '#!/bin/sh\necho v18\n');
    p.close();
  });

  it('refuses a corrupted chunk, asks again, and imports only what matches the team digest', async () => {
    const p = new RawPeer(relay.url, 'mallory-2');
    await p.handshake(TEAM, key);
    const data = fs.readFileSync(archive);
    let served = 0;
    let corrupted = 0;
    p.ws.on('message', (raw) => {
      const f = JSON.parse(String(raw)) as Frame;
      if (f.t !== 'pull') return;
      const slice = data.subarray(f.offset, f.offset + CHUNK_BYTES);
      const sha256 = crypto.createHash('sha256').update(slice).digest('hex');
      let sent = slice;
      if (f.offset === CHUNK_BYTES && corrupted === 0) {
        corrupted++;
        sent = Buffer.from(slice);
        sent[10] ^= 0xff; // damaged on the way: the hash no longer matches
      }
      served++;
      p.send({
        t: 'chunk',
        to: f.from,
        from: p.agent,
        layer: f.layer,
        digest: f.digest,
        offset: f.offset,
        total: data.length,
        sha256,
        data: sent.toString('base64'),
      });
    });
    // Announce that this peer has node20, then decide to activate it.
    p.send({
      t: 'presence',
      presence: {
        agent: p.agent,
        pseq: 1,
        user: 'mallory',
        host: 'test',
        active: [],
        held: [],
        applied: {},
        busy: [],
        has: { node20: digest },
        at: Date.now(),
      },
    });
    p.send({ t: 'event', event: event(p.agent, 1, [{ key: 'layer:node20', value: { active: true } }]) });
    // node18 (active, same priority, earlier name) still wins bin/node; lib/blob is node20's alone.
    await eventually('the agent to pull, verify and serve node20', () => fs.existsSync(path.join(e.mnt, 'lib/blob')), 30000);
    assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'lib/blob'), 'utf8'), fs.readFileSync(path.join(dir, 'src20/lib/blob'), 'utf8'));
    assert.strictEqual(corrupted, 1);
    assert.ok(served > Math.ceil(data.length / CHUNK_BYTES), `the corrupted chunk was asked for again (served ${served})`);
    assert.match(fs.readFileSync(path.join(e.home, 'agent.log'), 'utf8'), /chunk of node20 at \d+ from mallory-2 failed its check/);
    assert.strictEqual(await digestLayerDir(path.join(e.home, 'layers/node20')), digest);
    const st = await e.json<TeamStatus>('team', 'status');
    assert.ok(st.desired?.includes('node20'));
    p.close();
  });
});

describe('team: wss:// with a certificate', function () {
  this.timeout(60000);
  let dir: string;
  let relay: Relay;
  let e: Env;

  before(async () => {
    dir = fs.mkdtempSync('/tmp/strata-tls-');
    const cert = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        keyFile,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const secret = writeSecret(dir);
    relay = await startRelay(secret, ['--tls-cert', cert, '--tls-key', keyFile]);
    const teamFile = path.join(dir, 'strata.team.json');
    fs.writeFileSync(teamFile, JSON.stringify({ format: 1, team: 'acme', relays: [relay.url], layers: {}, defaults: [], slots: {} }));
    e = makeEnv('strata-tls-agent-');
    e.env.NODE_EXTRA_CA_CERTS = cert; // the agent trusts this relay's certificate
    await e.ok('team', 'join', relay.url, '--secret-file', secret, '--team-file', teamFile, '--name', 'tls');
  });
  after(async () => {
    await e?.cleanup();
    relay?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connects over TLS to a relay whose certificate it trusts', async () => {
    assert.match(relay.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
    const st = await eventually('the agent to connect over wss', async () => {
      const s = await e.json<TeamStatus>('team', 'status');
      return s.relays?.[0]?.state === 'connected' ? s : null;
    });
    assert.strictEqual(st.relays![0].url, relay.url);
  });

  it('refuses a relay whose certificate it does not trust', async () => {
    const p = new RawPeer(relay.url);
    await assert.rejects(p.opened, /self[- ]signed|certificate/i);
  });
});
