/**
 * Bad peers and bad networks against a real relay and a real agent: wrong secret, replayed
 * handshakes, oversized, garbled and unknown frames, a flood of connections, duplicated and
 * reordered events, and a corrupted chunk during a layer pull.
 */
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Env, makeEnv, writeTree } from './helpers';
import { TeamFixture, eventually, layerDigests, startTeam } from './team-helpers';
import { RawPeer, signedChunk, signedEvent, signedPresence } from './team-raw';
import { clientProof, deriveKey, newNonce } from '../../daemon/team/auth';
import { digestLayerDir } from '../../daemon/team/digest';
import { handshakeBytes } from '../../daemon/team/identity';
import { LayerStore } from '../../daemon/store';
import { CHUNK_BYTES, CloseCodes, Frame, TEAM_PROTOCOL_VERSION, TeamEvent, TeamStatus } from '../../protocol';

describe('team: bad peers get nothing, and everyone else is unaffected', function () {
  this.timeout(120000);
  let t: TeamFixture;
  let key: Buffer;
  let good: RawPeer;
  const TEAM = 'acme';

  before(async () => {
    t = await startTeam('strata-peers-', ['--team', TEAM]);
    key = t.key(TEAM);
    good = new RawPeer(t.url);
    await good.handshake(TEAM, key);
    await good.next('have');
  });
  after(async () => {
    good?.close();
    await t?.cleanup();
  });

  /** The relay still serves the good peer: a frame from a second good peer reaches it. */
  async function stillServing(): Promise<void> {
    const other = new RawPeer(t.url);
    await other.handshake(TEAM, key);
    const ev = signedEvent(TEAM, other.identity, 1, [{ key: 'layer:probe', value: { active: true } }]);
    other.send({ t: 'event', event: ev });
    await eventually('the good peer to receive the probe', () =>
      good.frames.some((f) => f.t === 'event' && f.event.origin === other.agent),
    );
    other.close();
  }

  it('refuses a peer with the wrong secret, and tells a client when the relay has the wrong one', async () => {
    const bad = new RawPeer(t.url);
    await bad.handshake(TEAM, deriveKey(Buffer.from('not the team secret at all'), TEAM)).catch(() => {});
    const c = await bad.whenClosed();
    assert.strictEqual(c.code, CloseCodes.AUTH_FAILED);
    assert.ok(!bad.frames.some((f) => f.t === 'synced' || f.t === 'event'), 'nothing leaked before authentication');
    await stillServing();
  });

  it('refuses a replayed hello and a replayed auth proof', async () => {
    const first = new RawPeer(t.url);
    const me = first.identity;
    const hello = (nonce: string) => ({ t: 'hello', v: TEAM_PROTOCOL_VERSION, team: TEAM, agent: me.id, nonce, key: me.key });
    await first.opened;
    first.send(hello(first.nonce));
    const ch = await first.next('challenge');
    const proof = clientProof(key, TEAM, ch.nonce, first.nonce, first.agent, ch.agent);
    const sig = me.sign(handshakeBytes('client', TEAM, [ch.nonce, first.nonce, me.id, ch.agent]));
    first.close();
    // Replay the same hello: the nonce was seen.
    const replay = new RawPeer(t.url, { identity: me });
    await replay.opened;
    replay.send(hello(first.nonce));
    assert.strictEqual((await replay.whenClosed()).code, CloseCodes.AUTH_FAILED);
    // Replay the captured proof and signature against a fresh challenge: they were bound to the old nonces.
    const again = new RawPeer(t.url, { identity: me });
    await again.opened;
    again.send(hello(newNonce()));
    await again.next('challenge');
    again.send({ t: 'auth', proof, sig });
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
      const p = new RawPeer(t.url);
      await p.handshake(TEAM, key);
      misbehave(p);
      assert.strictEqual((await p.whenClosed()).code, code, name);
    }
    await stillServing();
  });

  it('survives a flood of connections that never authenticate', async () => {
    const flood: RawPeer[] = [];
    for (let i = 0; i < 150; i++) flood.push(new RawPeer(t.url));
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
    const p = new RawPeer(t.url);
    await p.handshake(TEAM, key);
    // Beyond the burst and the credit each link gets for catching up on connect (links.ts).
    for (let i = 0; i < 20_000 && !p.closed; i++) p.send({ t: 'error', code: 'x', message: 'noise' });
    assert.strictEqual((await p.whenClosed()).code, CloseCodes.RATE_LIMITED);
    await stillServing();
  });

  it('handles nothing a peer sends after the frame that closed its link', async () => {
    const p = new RawPeer(t.url);
    await p.handshake(TEAM, key);
    await p.next('have');
    // Both leave in one write, before the close can reach the peer: the relay reads the event while
    // the link is closing. Taken then, a `synced` there could close gaps the closed link left.
    const late = signedEvent(TEAM, p.identity, 1, [{ key: 'layer:late', value: { active: true } }]);
    p.send('{ garbled');
    p.send({ t: 'event', event: late });
    assert.strictEqual((await p.whenClosed()).code, CloseCodes.BAD_FRAME);
    await stillServing();
    assert.ok(
      !good.frames.some((f) => f.t === 'event' && f.event.origin === p.agent),
      'the event sent after the garbled frame was handled and forwarded',
    );
  });
});

describe('team: duplicated and reordered delivery, corrupted chunks', function () {
  this.timeout(120000);
  let t: TeamFixture;
  let key: Buffer;
  let e: Env;
  let digest: string;
  let archive: string;
  const TEAM = 'acme';
  const NODE20 = '#!/bin/sh\necho v20\n';

  before(async () => {
    t = await startTeam('strata-dup-', ['--team', TEAM]);
    const dir = t.dir;
    key = t.key(TEAM);
    // The layer the agent lacks, packed the way a teammate would serve it.
    writeTree(path.join(dir, 'src18'), { 'bin/node': '#!/bin/sh\necho v18\n' });
    writeTree(path.join(dir, 'src20'), { 'bin/node': NODE20, 'lib/blob': crypto.randomBytes(3 * CHUNK_BYTES + 123).toString('hex') });
    const store = new LayerStore(path.join(dir, 'peer-home'));
    await store.create('node20', path.join(dir, 'src20'), { version: '20' });
    await store.create('node18', path.join(dir, 'src18'), { version: '18' });
    digest = await digestLayerDir(store.dir('node20'));
    archive = path.join(dir, 'node20.tar.gz');
    await store.exportTo('node20', archive);
    t.writeTeamFile({ team: TEAM, layers: await layerDigests(path.join(dir, 'peer-home'), ['node20', 'node18']) });
    e = await t.agent({
      prefix: 'strata-dup-agent-',
      base: { 'bin/node': '#!/bin/sh\necho system\n' },
      layers: { node18: ['--from', path.join(dir, 'src18'), '--version', '18'] },
    });
    await t.join(e, 'erin');
  });
  after(async () => t?.cleanup());

  it('applies each decision exactly once, whatever the order and however often it arrives', async () => {
    const p = new RawPeer(t.url);
    await p.handshake(TEAM, key);
    const t0 = Date.now();
    const e1 = signedEvent(TEAM, p.identity, 1, [{ key: 'layer:node18', value: { active: true } }], { wall: t0 });
    const e2 = signedEvent(TEAM, p.identity, 2, [{ key: 'layer:node18', value: { active: false } }], { wall: t0 + 1 });
    const e3 = signedEvent(TEAM, p.identity, 3, [{ key: 'layer:node18', value: { active: true } }], { wall: t0 + 2 });
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

  it('still asks for a decision it missed after the maker’s presence says it made it', async () => {
    // The link carrying decision 1 died before it arrived; decision 2 and the maker's presence
    // ("I made up to 2") came on. On the next connection the relay must still ask for decision 1.
    const p = new RawPeer(t.url);
    await p.handshake(TEAM, key);
    const t0 = Date.now();
    const made = [1, 2].map((seq) =>
      signedEvent(TEAM, p.identity, seq, [{ key: 'layer:node18', value: { active: seq === 2 } }], { wall: t0 + seq }),
    );
    p.send({ t: 'event', event: made[1] });
    p.send({ t: 'presence', presence: signedPresence(TEAM, p.identity, { applied: { [p.agent]: 2 } }) });
    await eventually('the agent to hear the presence', async () =>
      (await e.json<TeamStatus>('team', 'status')).peers?.some((x) => x.agent === p.agent),
    );
    p.close();
    await p.whenClosed();

    const again = new RawPeer(t.url, { identity: p.identity });
    await again.handshake(TEAM, key);
    const have = await again.next('have');
    assert.strictEqual(have.seen[p.agent], undefined, `the relay says it has every decision of ours up to ${have.seen[p.agent]}`);
    // Answer as a peer does: every decision above what the relay says it has.
    for (const ev of made) if (ev.seq > (have.seen[p.agent] ?? 0)) again.send({ t: 'event', event: ev });
    const mine = await eventually('the agent to record both decisions', async () => {
      const seqs = (await e.json<TeamEvent[]>('team', 'history')).filter((x) => x.origin === p.agent).map((x) => x.seq);
      return seqs.length >= 2 ? seqs.sort() : null;
    });
    assert.deepStrictEqual(mine, [1, 2]);
    again.close();
  });

  it('refuses a corrupted chunk, asks again, and imports only what matches the team digest', async () => {
    const p = new RawPeer(t.url);
    await p.handshake(TEAM, key);
    const data = fs.readFileSync(archive);
    let served = 0;
    let corrupted = 0;
    p.ws.on('message', (raw) => {
      const f = JSON.parse(String(raw)) as Frame;
      if (f.t !== 'pull') return;
      const damage = f.offset === CHUNK_BYTES && corrupted === 0;
      if (damage) corrupted++;
      served++;
      p.send(signedChunk(TEAM, p.identity, f, data, CHUNK_BYTES, data.length, damage));
    });
    // Announce that this peer has node20, then decide to activate it.
    p.send({ t: 'presence', presence: signedPresence(TEAM, p.identity, { has: { node20: digest } }) });
    p.send({ t: 'event', event: signedEvent(TEAM, p.identity, 1, [{ key: 'layer:node20', value: { active: true } }]) });
    // node18 (active, same priority, earlier name) still wins bin/node; lib/blob is node20's alone.
    await eventually('the agent to pull, verify and serve node20', () => fs.existsSync(path.join(e.mnt, 'lib/blob')), 30000);
    assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'lib/blob'), 'utf8'), fs.readFileSync(path.join(t.dir, 'src20/lib/blob'), 'utf8'));
    assert.strictEqual(corrupted, 1);
    assert.ok(served > Math.ceil(data.length / CHUNK_BYTES), `the corrupted chunk was asked for again (served ${served})`);
    assert.match(
      fs.readFileSync(path.join(e.home, 'agent.log'), 'utf8'),
      new RegExp(`chunk of node20 at \\d+ from ${p.agent} failed its check`),
    );
    assert.strictEqual(await digestLayerDir(path.join(e.home, 'layers/node20')), digest);
    const st = await e.json<TeamStatus>('team', 'status');
    assert.ok(st.desired?.includes('node20'));
    p.close();
  });
});

describe('team: wss:// with a certificate', function () {
  this.timeout(60000);
  let t: TeamFixture;
  let e: Env;

  before(async () => {
    t = new TeamFixture('strata-tls-');
    const dir = t.dir;
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
    await t.startRelay(['--tls-cert', cert, '--tls-key', keyFile]);
    t.writeTeamFile({ layers: {} });
    e = makeEnv('strata-tls-agent-');
    t.agents.push(e);
    e.env.NODE_EXTRA_CA_CERTS = cert; // the agent trusts this relay's certificate
    await t.join(e, 'tls');
  });
  after(async () => t?.cleanup());

  it('connects over TLS to a relay whose certificate it trusts', async () => {
    assert.match(t.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
    const st = await eventually('the agent to connect over wss', async () => {
      const s = await e.json<TeamStatus>('team', 'status');
      return s.relays?.[0]?.state === 'connected' ? s : null;
    });
    assert.strictEqual(st.relays![0].url, t.url);
  });

  it('refuses a relay whose certificate it does not trust', async () => {
    const p = new RawPeer(t.url);
    await assert.rejects(p.opened, /self[- ]signed|certificate/i);
  });
});
