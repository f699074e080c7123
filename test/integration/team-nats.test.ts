/**
 * The team over NATS JetStream: real agents (separate STRATA_HOMEs, real FUSE views) and a real
 * nats-server (docs/nats/office.conf) on loopback. Decisions travel through the KV bucket, a swap
 * is one key, late joiners and returning agents catch up from it, a server restart loses nothing,
 * layers come from the Object Store (a corrupted one refused), wrong credentials are explained.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { ObjectStore, Objm } from '@nats-io/obj';
import { jetstream } from '@nats-io/jetstream';
import { Env, makeEnv, writeTree } from './helpers';
import { TeamFixture, eventually, layerDigests, readText as read } from './team-helpers';
import { NatsServer, PASSWORDS, startOffice, teamCredentials, writeCredentials } from './nats-helpers';
import { digestLayerDir } from '../../daemon/team/digest';
import { Identity } from '../../daemon/team/identity';
import { AgentClient } from '../../shared/client';
import { socketPath } from '../../shared/paths';
import { TeamStatus } from '../../protocol';

describe('team over NATS JetStream', function () {
  this.timeout(180000);
  let t: TeamFixture;
  let srv: NatsServer;
  let creds: Record<string, string>;
  let a: Env, b: Env;
  let digests: Record<string, { digest: string }>;

  const SYSTEM = '#!/bin/sh\necho system\n';
  const NODE18 = '#!/bin/sh\necho v18\n';
  const NODE20 = '#!/bin/sh\necho v20\n';
  const node = (e: Env) => read(path.join(e.mnt, 'bin/node'));
  const log = (e: Env) => read(path.join(e.home, 'agent.log')) ?? '';

  const agent = (withLayers: string[]) =>
    t.agent({
      prefix: 'strata-nats-',
      base: { 'bin/node': SYSTEM, README: 'project\n' },
      layers: Object.fromEntries(withLayers.map((l) => [l, ['--from', path.join(t.dir, l), '--version', l.slice(4)]])),
    });

  const join = (e: Env, user: string, url = srv.url) => t.join(e, user, ['--credentials', creds[user]], url);

  async function withNats<T>(fn: (nc: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> {
    const nc = await connect({ servers: srv.url, user: 'alice', pass: PASSWORDS.ACME_ALICE_PASSWORD });
    try {
      return await fn(nc);
    } finally {
      await nc.close();
    }
  }

  /** fn with the team's Object Store of layer archives (and the connection it came on). */
  const withArchives = <T>(fn: (os: ObjectStore, nc: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> =>
    withNats(async (nc) => fn(await new Objm(nc).open('strata-acme-layers'), nc));

  /** The agent reads `spec` as its team file again, over the control socket as the extension does. */
  async function reload(e: Env, spec: unknown): Promise<void> {
    const c = new AgentClient(socketPath(e.home, e.env));
    await c.connect();
    try {
      await c.call('team.reload', { teamText: JSON.stringify(spec) });
    } finally {
      c.close();
    }
  }

  before(async () => {
    t = new TeamFixture('strata-nats-shared-');
    writeTree(path.join(t.dir, 'node18'), { 'bin/node': NODE18 });
    writeTree(path.join(t.dir, 'node20'), { 'bin/node': NODE20, 'lib/big': 'x'.repeat(600 * 1024) });
    srv = await startOffice(path.join(t.dir, 'nats'));
    t.url = srv.url;
    t.stopServer = () => srv.stop();
    creds = teamCredentials(t.dir);
    a = await agent(['node18', 'node20']);
    b = await agent(['node18', 'node20']);
    digests = await layerDigests(a.home, ['node18', 'node20']);
    t.writeTeamFile({ layers: digests, slots: { node: ['node18', 'node20'] } });
    await join(a, 'alice');
    await join(b, 'bob');
    await t.sees(a, 'bob');
  });

  after(async () => t?.cleanup());

  it('refuses wrong credentials, naming the server and what to fix, and joins nothing', async () => {
    const d = makeEnv('strata-nats-');
    t.agents.push(d);
    const wrong = writeCredentials(d.dir, 'bob', 'not-his-password');
    const r = await d.cli('team', 'join', srv.url, '--secret-file', t.secret, '--team-file', t.teamFile, '--credentials', wrong);
    assert.strictEqual(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`E_TEAM_CONNECT: the NATS server at nats://127.0.0.1:${srv.port} refused this agent's credentials from ${wrong}`),
    );
    assert.match(r.stderr, /Check the user and password .* against that server's accounts/);
    assert.deepStrictEqual(await d.json<TeamStatus>('team', 'status'), { joined: false });
    const none = await d.cli('team', 'join', srv.url, '--secret-file', t.secret, '--team-file', t.teamFile);
    assert.match(none.stderr, /E_TEAM_CONNECT: .* \(none were given\)/);
    assert.match(none.stderr, /--credentials FILE/);
    fs.chmodSync(creds.bob, 0o644);
    try {
      const open = await d.cli('team', 'join', srv.url, '--secret-file', t.secret, '--team-file', t.teamFile, '--credentials', creds.bob);
      assert.match(open.stderr, /E_TEAM_SECRET: .*accessible by group or others; run: chmod 600/);
    } finally {
      fs.chmodSync(creds.bob, 0o600);
    }
  });

  it("activate on A makes B's view redirect, and A sees it applied on 2 of 2", async () => {
    assert.strictEqual(node(b), SYSTEM);
    await a.ok('activate', 'node20');
    await eventually('B to serve node 20', () => node(b) === NODE20);
    const st = await eventually('B to acknowledge', async () => {
      const s = await a.json<TeamStatus>('team', 'status');
      return s.lastDecision && s.lastDecision.applied === 2 ? s : null;
    });
    assert.deepStrictEqual(st.desired, ['node20']);
    assert.strictEqual(st.lastDecision!.of, 2);
    assert.strictEqual(st.relays?.[0].state, 'connected');
  });

  it('deactivate on B makes A pass through again', async () => {
    await b.ok('deactivate', 'node20');
    await eventually('A to pass through', () => node(a) === SYSTEM);
  });

  it('swaps within a slot as one key write', async () => {
    await a.ok('activate', 'node18');
    await eventually('B on node 18', () => node(b) === NODE18);
    const before = await withNats(async (nc) => (await new Kvm(nc).open('strata-acme')).status());
    await b.ok('swap', 'node18', 'node20');
    await eventually('A on node 20', () => node(a) === NODE20);
    const after = await withNats(async (nc) => (await new Kvm(nc).open('strata-acme')).status());
    assert.strictEqual(after.streamInfo.state.last_seq - before.streamInfo.state.last_seq, 1, 'a swap is one write');
    const h = await a.json<{ writes: { key: string }[]; user: string }[]>('team', 'history');
    assert.deepStrictEqual(
      h.at(-1)!.writes.map((w) => w.key),
      ['slot:node'],
    );
    assert.strictEqual(h.at(-1)!.user, 'bob');
  });

  it('refuses a value in the bucket that no member wrote (signed, but without the team MAC), and keeps the register', async () => {
    // What the NATS operator could write: an event signed by a key of its own, lacking the team secret.
    const outsider = Identity.generate();
    const event = outsider.signEvent('acme', {
      origin: outsider.id,
      seq: 1,
      tag: { wall: Date.now() + 1000, logical: 0, agent: outsider.id },
      writes: [{ key: 'slot:node', value: { layer: 'node18' } }],
      user: 'mallory',
      host: 'nats',
      prev: [{ key: 'slot:node', value: { layer: 'node20' } }],
    });
    await withNats(async (nc) => (await new Kvm(nc).open('strata-acme')).put('slot.node', JSON.stringify({ event, mac: '0'.repeat(64) })));
    await eventually('A to refuse it', () => /refused .*slot\.node.*team MAC does not hold/.test(log(a)));
    assert.strictEqual(node(a), NODE20);
    assert.strictEqual(node(b), NODE20);
    // The next decision on that key replaces the forged value (compare-and-set on its revision).
    await a.ok('swap', 'node20', 'node18');
    await eventually('B on node 18', () => node(b) === NODE18);
  });

  it('lets an agent away while decisions are made catch up on restart, from the revision it had', async () => {
    const { pid } = await b.json<{ pid: number }>('status');
    process.kill(pid, 'SIGKILL');
    await a.ok('swap', 'node18', 'node20');
    await a.ok(
      'team',
      'revert',
      (await a.json<{ origin: string; seq: number }[]>('team', 'history')).map((e) => `${e.origin}:${e.seq}`).at(-1)!,
    );
    await a.ok('swap', 'node18', 'node20');
    await b.ok('agent', 'start');
    await eventually('B to converge on node 20', () => node(b) === NODE20);
    assert.match(log(b), /resuming the team's decisions after revision \d+/);
    const hb = await b.json<{ user: string }[]>('team', 'history');
    assert.ok(hb.filter((e) => e.user === 'alice').length >= 4, 'B has the decisions made while it was away');
  });

  it('lets a late joiner catch up from the bucket, pulling the layer it lacks from the Object Store', async () => {
    const c = await agent(['node18']);
    await join(c, 'carol');
    await eventually('C to pull node 20 and serve it', () => node(c) === NODE20, 60000);
    assert.strictEqual(await digestLayerDir(path.join(c.home, 'layers/node20')), digests.node20.digest);
    assert.match(log(c), /\[team\] connected to NATS/);
    const hc = await c.json<unknown[]>('team', 'history');
    assert.ok(hc.length >= 6, `C has the team's history (${hc.length})`);
    await c.ok('team', 'leave');
  });

  it('refuses a corrupted object (the store digest) and a wrong archive (the team file digest), then pulls a good one', async () => {
    const name = digests.node20.digest;
    // A chunk appended to the object: the store's SHA-256 no longer holds.
    await withArchives(async (os, nc) => {
      const info = await os.info(name);
      assert.ok(info, 'A published node20');
      await jetstream(nc).publish(`$O.strata-acme-layers.C.${info.nuid}`, Buffer.from('evil'));
    });
    const d = await agent(['node18']);
    await join(d, 'carol');
    await eventually('D to refuse the corrupted object', () => /digests do not match|was refused/.test(log(d)), 60000);
    await eventually('D to pull a good copy once A publishes it again', () => node(d) === NODE20, 60000);
    await d.ok('team', 'leave');
    // A valid object (its store digest holds) holding another layer: refused against the team file.
    await withArchives(async (os) => {
      const bogus = fs.readFileSync(path.join(t.dir, 'node18', 'bin/node'));
      await os.putBlob({ name }, new Uint8Array(bogus));
    });
    const e = await agent(['node18']);
    await join(e, 'carol');
    await eventually('E to discard the wrong archive', () => /node20 from nats-object-store .* was discarded/.test(log(e)), 60000);
    await eventually('E to pull a good copy', () => node(e) === NODE20, 60000);
    assert.strictEqual(await digestLayerDir(path.join(e.home, 'layers/node20')), digests.node20.digest);
    await e.ok('team', 'leave');
  });

  it('works over the WebSocket listener too (nats+ws://)', async () => {
    const w = await agent(['node18', 'node20']);
    await join(w, 'carol', srv.wsUrl!);
    await eventually('W to follow the team over WebSocket', () => node(w) === node(a));
    assert.strictEqual(node(w), NODE20);
    await w.ok('swap', 'node20', 'node18');
    await eventually('A to follow W', () => node(a) === NODE18);
    await a.ok('swap', 'node18', 'node20');
    await eventually('W to follow A', () => node(w) === NODE20);
    await w.ok('team', 'leave');
  });

  it('after a reload names a new layer, a teammate that reloads later gets the decision made meanwhile (and the layer)', async () => {
    writeTree(path.join(t.dir, 'tools'), { 'opt/tool': 'tool 1\n' });
    await a.ok('layer', 'create', 'tools', '--from', path.join(t.dir, 'tools'));
    const spec = JSON.parse(fs.readFileSync(t.teamFile, 'utf8'));
    spec.layers.tools = { digest: await digestLayerDir(path.join(a.home, 'layers', 'tools')) };
    fs.writeFileSync(t.teamFile, JSON.stringify(spec, null, 2));
    await reload(a, spec);
    await a.ok('activate', 'tools');
    await reload(b, spec);
    await eventually('B to get tools from the bucket and the Object Store', () => read(path.join(b.mnt, 'opt/tool')) === 'tool 1\n', 60000);
    await a.ok('deactivate', 'tools');
    await eventually('B to drop tools', () => read(path.join(b.mnt, 'opt/tool')) === null);
  });

  it('loses nothing when the server restarts with its store', async () => {
    await srv.stop();
    await srv.start();
    await eventually('A to reconnect', async () => (await a.json<TeamStatus>('team', 'status')).relays?.[0]?.state === 'connected');
    await a.ok('swap', 'node20', 'node18');
    await eventually('B on node 18', () => node(b) === NODE18);
    const f = await agent([]);
    await join(f, 'carol');
    await eventually(
      'a new agent to get the team state',
      async () => (await f.json<TeamStatus>('team', 'status')).desired?.[0] === 'node18',
    );
    const hf = await f.json<unknown[]>('team', 'history');
    assert.ok(hf.length >= 7, `the history survived the restart (${hf.length})`);
  });
  it('team prune deletes the archives of versions no one names, keeps those a teammate still has, and --dry-run deletes nothing', async () => {
    const stale = `sha256:${'ab'.repeat(32)}`;
    const list = () => withArchives(async (os) => (await os.list()).filter((i) => !i.deleted).map((i) => i.name));
    await withArchives(async (os) => {
      await os.putBlob({ name: stale, description: 'strata layer node16' }, new Uint8Array(Buffer.from('an old version')));
      await os.putBlob({ name: 'notes.txt' }, new Uint8Array(Buffer.from('not an archive')));
    });
    await eventually('node18 and node20 in the store', async () => {
      const names = await list();
      return names.includes(digests.node18.digest) && names.includes(digests.node20.digest);
    });
    // A moves on to a team file without node18; B, still on the old one, has node18.
    const spec = JSON.parse(fs.readFileSync(t.teamFile, 'utf8'));
    const moved = { ...spec, layers: { ...spec.layers }, slots: {} };
    delete moved.layers.node18;
    await reload(a, moved);
    try {
      type Pruned = { dryRun: boolean; removed: { digest: string; layer: string }[]; kept: number };
      const dry = await a.json<Pruned>('team', 'prune', '--dry-run');
      assert.deepStrictEqual(
        dry.removed.map((r) => `${r.layer} ${r.digest}`),
        [`node16 ${stale}`],
        'only the archive no one names: node18 stays while B has it',
      );
      assert.ok((await list()).includes(stale), '--dry-run deleted nothing');
      const text = await a.ok('team', 'prune');
      assert.match(text, new RegExp(`deleted 1 archive\\(s\\), 14 bytes:\n  node16 ${stale} \\(14 bytes\\)`));
      const left = await list();
      assert.ok(!left.includes(stale), 'the stale archive is gone');
      for (const kept of [digests.node18.digest, digests.node20.digest, 'notes.txt']) assert.ok(left.includes(kept), `${kept} kept`);
      assert.match(log(a), new RegExp(`pruned the archive of node16 at ${stale} \\(14 bytes\\)`));
    } finally {
      await reload(a, spec);
    }
  });
});
