/**
 * A teammate turned attacker: Mallory knows the team secret and speaks the real protocol (to the
 * relay, and straight to Bob's agent, which listens), and tries each attack of issue 9 items 1-5
 * against two real agents, Alice and Bob. Each attack must be refused, and the victims keep
 * working: their later switches succeed, `team history` works, and status shows Mallory's own
 * drift, never one she forged. (The flood of unauthenticated connections is team-flood.test.ts.)
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Env, makeEnv, writeTree } from './helpers';
import { TeamFixture, eventually, layerDigests, readText as read, startTeam } from './team-helpers';
import { RawPeer, signedChunk, signedEvent, signedPresence } from './team-raw';
import { digestLayerDir } from '../../daemon/team/digest';
import { Identity, readIdentity } from '../../daemon/team/identity';
import { LayerStore } from '../../daemon/store';
import { CHUNK_BYTES, CloseCodes, Frame, TeamEvent, TeamStatus } from '../../protocol';

const TEAM = 'acme';
const NODE18 = '#!/bin/sh\necho v18\n';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('team: a teammate who attacks', function () {
  this.timeout(600_000);
  let t: TeamFixture;
  let key: Buffer;
  let digest20: string;
  let good20: Buffer;
  let alice: Env;
  let bob: Env;
  let aliceId: string;
  let bobId: string;
  /** Bob's agent accepts teammates directly: Mallory's frames reach it without the relay's checks. */
  let bobUrl: string;
  const peers: RawPeer[] = [];

  const log = (e: Env) => read(path.join(e.home, 'agent.log')) ?? '';
  const status = (e: Env) => e.json<TeamStatus>('team', 'status');
  const history = (e: Env) => e.json<TeamEvent[]>('team', 'history');

  /** Mallory's own presence, then wait until Bob lists it: what she sent before on that link was handled. */
  async function handled(m: RawPeer): Promise<void> {
    m.send({ t: 'presence', presence: signedPresence(TEAM, m.identity, { user: 'alice', active: ['EVIL'] }) });
    await eventually('bob to handle what mallory sent', async () => (await status(bob)).peers?.some((p) => p.agent === m.agent));
  }

  async function mallory(url = bobUrl, identity?: Identity): Promise<RawPeer> {
    const p = new RawPeer(url, { identity });
    peers.push(p);
    await p.handshake(TEAM, key);
    return p;
  }

  /** Alice switches node18 and Bob follows; both histories read; nothing failed. */
  async function victimsWork(): Promise<void> {
    const on = (await status(alice)).desired?.includes('node18');
    const r = await alice.json<{ decision: string; active: string[] }>(on ? 'deactivate' : 'activate', 'node18');
    assert.match(r.decision, new RegExp(`^${aliceId}:\\d+$`));
    assert.ok(Number(r.decision.split(':')[1]) < 1000, `alice's seq stays small: ${r.decision}`);
    await eventually('bob to follow alice', () => (read(path.join(bob.mnt, 'bin/node')) === NODE18) === !on, 60_000);
    const b = await bob.json<{ decision: string }>(on ? 'activate' : 'deactivate', 'node18');
    assert.match(b.decision, new RegExp(`^${bobId}:\\d+$`));
    await eventually('alice to follow bob', () => (read(path.join(alice.mnt, 'bin/node')) === NODE18) === on, 60_000);
    for (const e of [alice, bob]) {
      const h = await history(e);
      assert.ok(h.length > 0);
      for (const ev of h) {
        assert.ok(Math.abs(ev.tag.wall - Date.now()) < 600_000, `a tag of ${new Date(ev.tag.wall).toISOString()}`);
        assert.ok(ev.seq < 1000, `${ev.origin}:${ev.seq} in the history`);
      }
      assert.doesNotMatch(await e.ok('team', 'history'), /RangeError|E_INTERNAL/);
    }
  }

  before(async () => {
    t = await startTeam('strata-attack-', ['--team', TEAM]);
    const dir = t.dir;
    key = t.key(TEAM);
    writeTree(path.join(dir, 'src18'), { 'bin/node': NODE18 });
    writeTree(path.join(dir, 'src20'), { 'lib/node20': 'the real node 20\n' });
    // The team's node20 as a teammate would serve it; neither victim has it yet.
    const store = new LayerStore(path.join(dir, 'serve-home'));
    await store.create('node20', path.join(dir, 'src20'), { version: '20' });
    await store.create('node18', path.join(dir, 'src18'), { version: '18' });
    digest20 = await digestLayerDir(store.dir('node20'));
    await store.exportTo('node20', path.join(dir, 'node20.tar.gz'));
    good20 = fs.readFileSync(path.join(dir, 'node20.tar.gz'));
    t.writeTeamFile({ team: TEAM, layers: await layerDigests(path.join(dir, 'serve-home'), ['node18', 'node20']) });
    const agent = async (name: string, listen: string[]) => {
      const e = await t.agent({
        prefix: `strata-attack-${name}-`,
        base: { 'bin/node': '#!/bin/sh\necho system\n' },
        layers: { node18: ['--from', path.join(dir, 'src18'), '--version', '18'] },
      });
      await t.join(e, name, listen);
      return e;
    };
    alice = await agent('alice', []);
    bob = await agent('bob', ['--listen', '127.0.0.1:0']);
    aliceId = (await status(alice)).agent!;
    bobId = (await status(bob)).agent!;
    bobUrl = `ws://${(await status(bob)).listen}`;
    await eventually('alice and bob to see each other', async () => (await status(alice)).peers?.some((p) => p.agent === bobId));
  });

  after(async () => {
    for (const p of peers) p.close();
    await t?.cleanup();
  });

  it("refuses events in another agent's name, whatever seq they claim", async () => {
    const m = await mallory();
    const forge = (seq: number, withKey?: string) => {
      const ev = signedEvent(TEAM, m.identity, seq, [{ key: 'layer:node18', value: { active: true } }], { origin: aliceId });
      return withKey ? { ...ev, key: withKey } : ev;
    };
    const aliceKey = readIdentity(path.join(alice.home, 'team.key')).key; // public: it travels with all she says
    m.send({ t: 'event', event: forge(2 ** 40) }); // her own key, alice's id
    m.send({ t: 'event', event: forge(2 ** 40 - 1, aliceKey) }); // alice's key, her signature
    const viaRelay = await mallory(t.url);
    viaRelay.send({
      t: 'event',
      event: signedEvent(TEAM, viaRelay.identity, 2 ** 40, [{ key: 'layer:node18', value: { active: true } }], { origin: aliceId }),
    });
    await handled(m);
    await victimsWork();
    assert.ok(!(await history(bob)).some((e) => e.seq >= 2 ** 40 - 1));
    const refused = log(bob).match(new RegExp(`refused event ${aliceId}:\\d+ from peer ${m.agent}`, 'g')) ?? [];
    assert.strictEqual(refused.length, 2, log(bob));
    assert.match(log(bob), /it carries a different key than the one pinned for/);
    assert.match(log(bob), /it carries a signature that does not verify/);
    // seq 2^53-1 is beyond what any frame may say: the link that sent it is closed.
    m.send({ t: 'event', event: forge(2 ** 53 - 1) });
    assert.strictEqual((await m.whenClosed()).code, CloseCodes.BAD_FRAME);
  });

  it('refuses a wall clock of 2^53-1 or an hour ahead: nothing enters the clocks, history still reads', async () => {
    const m = await mallory();
    m.send({
      t: 'event',
      event: signedEvent(TEAM, m.identity, 1, [{ key: 'layer:node20', value: { active: true } }], { wall: Date.now() + 3_600_000 }),
    });
    await handled(m);
    m.send({
      t: 'event',
      event: signedEvent(TEAM, m.identity, 2, [{ key: 'layer:node20', value: { active: true } }], { wall: 2 ** 53 - 1 }),
    });
    assert.strictEqual((await m.whenClosed()).code, CloseCodes.BAD_FRAME);
    // The same through the relay, to Alice.
    const r = await mallory(t.url);
    r.send({
      t: 'event',
      event: signedEvent(TEAM, r.identity, 1, [{ key: 'layer:node20', value: { active: true } }], { wall: Date.now() + 3_600_000 }),
    });
    r.send({
      t: 'event',
      event: signedEvent(TEAM, r.identity, 2, [{ key: 'layer:node18', value: { active: true } }], { wall: Date.now(), logical: 2 ** 32 }),
    });
    await handled(r);
    await victimsWork();
    assert.ok(!(await status(bob)).desired?.includes('node20'), 'the refused decision did not take effect');
    const mine = (await history(bob)).filter((e) => e.origin === bobId).pop()!;
    assert.ok(mine.tag.wall < Date.now() + 60_000, `bob's clock stayed sane: ${mine.tag.wall}`);
    assert.match(log(bob), new RegExp(`refused event ${m.agent}:1 from peer ${m.agent}: its clock is 3\\d{3} s ahead of ours`));
  });

  it("refuses presence in another agent's name; status shows Mallory's own drift; --when-idle waits on no forgery", async () => {
    const m = await mallory();
    // Newer than anything alice sent (a pseq 4 minutes ahead, within the skew allowed), so it is checked.
    const forge = (pseq: number) =>
      signedPresence(TEAM, m.identity, {
        agent: aliceId,
        pseq,
        user: 'alice',
        active: ['node18', 'EVIL'],
        busy: ['node18', 'node20'],
        has: { node20: digest20 },
      });
    m.send({ t: 'presence', presence: forge(Date.now() + 240_000) });
    m.send({ t: 'presence', presence: { ...forge(Date.now() + 240_000), key: readIdentity(path.join(alice.home, 'team.key')).key } });
    m.send({ t: 'presence', presence: forge(Date.now() + 3_600_000) });
    // Her own presence, under her own id, with alice's name as its label.
    await handled(m);
    const st = await status(bob);
    const a = st.peers!.find((p) => p.agent === aliceId)!;
    assert.ok(!a.active?.includes('EVIL') && !a.busy.length, `alice as bob sees her: ${JSON.stringify(a)}`);
    const mal = st.peers!.find((p) => p.agent === m.agent)!;
    assert.deepStrictEqual(mal.active, ['EVIL']);
    assert.deepStrictEqual(
      mal.drift,
      (st.desired ?? []).map((n) => `-${n}`),
      "mallory's own drift",
    );
    // --when-idle does not wait on layers alice never opened.
    const r = await bob.cli('activate', 'node18', '--when-idle', '--timeout', '3');
    assert.strictEqual(r.code, 0, r.stderr);
    const refusal = (why: string) => new RegExp(`refused presence of ${aliceId} from peer ${m.agent}: ${why}`);
    assert.match(log(bob), refusal('it carries a different key than the one pinned'));
    assert.match(log(bob), refusal('it carries a signature that does not verify'));
    assert.match(log(bob), refusal('its clock is 3\\d{3} s ahead of ours'));
    m.send({ t: 'presence', presence: forge(2 ** 53 - 1) });
    assert.strictEqual((await m.whenClosed()).code, CloseCodes.BAD_FRAME);
    await victimsWork();
  });

  /** Deactivate node20 for the team and remove it from both victims, so the next activation pulls it. */
  async function resetNode20(): Promise<void> {
    if ((await status(alice)).desired?.includes('node20')) await alice.ok('deactivate', 'node20'); // else E_LAYER_INACTIVE
    for (const e of [alice, bob]) {
      await eventually('node20 off', async () => !(await e.json<{ active: string[] }>('status')).active.includes('node20'));
      if ((await e.cli('layer', 'show', 'node20')).code === 0) await e.ok('layer', 'rm', 'node20');
    }
  }

  /** Serves pulls of node20 from `archive` (declaring `total`), announcing it every 50 ms to be picked first. */
  function serve(p: RawPeer, archive: Buffer, total = archive.length): () => void {
    p.ws.on('message', (raw) => {
      const f = JSON.parse(String(raw)) as Frame;
      if (f.t === 'pull') p.send(signedChunk(TEAM, p.identity, f, archive, CHUNK_BYTES, total));
    });
    const announce = () => p.send({ t: 'presence', presence: signedPresence(TEAM, p.identity, { has: { node20: digest20 } }) });
    announce();
    const t = setInterval(announce, 50);
    return () => clearInterval(t);
  }

  async function bothPulledGood20(): Promise<void> {
    for (const e of [alice, bob]) {
      await eventually('node20 pulled, verified and served', () => read(path.join(e.mnt, 'lib/node20')) === 'the real node 20\n', 60_000);
      assert.strictEqual(await digestLayerDir(path.join(e.home, 'layers/node20')), digest20);
      assert.ok(fs.lstatSync(path.join(e.home, 'layers/node20/files')).isDirectory());
    }
  }

  it('discards a pulled archive whose files/ is a symlink to /etc, then one whose digest differs, and pulls from someone else', async () => {
    await resetNode20();
    const evil = path.join(t.dir, 'evil');
    fs.mkdirSync(evil);
    fs.copyFileSync(path.join(t.dir, 'serve-home/layers/node20/layer.json'), path.join(evil, 'layer.json'));
    fs.symlinkSync('/etc', path.join(evil, 'files'));
    execFileSync('tar', ['-C', evil, '-czf', path.join(t.dir, 'evil.tar.gz'), 'layer.json', 'files']);
    const m = await mallory(t.url);
    const stop = serve(m, fs.readFileSync(path.join(t.dir, 'evil.tar.gz')));
    await alice.ok('activate', 'node20');
    for (const e of [alice, bob]) {
      await eventually(`${e === alice ? 'alice' : 'bob'} to discard mallory's archive`, () =>
        new RegExp(`node20 from ${m.agent} \\(mallory@test\\) was discarded: .*files is (not a folder|a symlink)`).test(log(e)),
      );
      assert.strictEqual(read(path.join(e.mnt, 'shadow')), null, '/etc is not reachable through the view');
    }
    // A well-formed node20 with one file changed: its digest is not the team file's.
    writeTree(path.join(t.dir, 'tampered'), { 'lib/node20': 'a node 20 with a backdoor\n' });
    const other = new LayerStore(path.join(t.dir, 'tamper-home'));
    await other.create('node20', path.join(t.dir, 'tampered'), { version: '20' });
    await other.exportTo('node20', path.join(t.dir, 'tampered.tar.gz'));
    const m2 = await mallory(t.url);
    const stop2 = serve(m2, fs.readFileSync(path.join(t.dir, 'tampered.tar.gz')));
    for (const e of [alice, bob]) {
      await eventually('the tampered archive to be discarded', () =>
        new RegExp(`node20 from ${m2.agent} \\(mallory@test\\) was discarded: its digest is sha256:\\w+, not the team file's`).test(log(e)),
      );
      assert.ok(!fs.existsSync(path.join(e.home, 'layers/node20')), 'the tampered layer did not enter the store');
    }
    const honest = await mallory(t.url);
    const stopHonest = serve(honest, good20);
    await bothPulledGood20();
    stop();
    stop2();
    stopHonest();
    for (const e of [alice, bob])
      assert.ok(!fs.readdirSync(path.join(e.home, 'layers')).some((n) => n.startsWith('.import-')), 'no staging left');
    // A local import of the same archive is refused as well.
    const r = await bob.cli('layer', 'import', path.join(t.dir, 'evil.tar.gz'));
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_ARCHIVE: .*files is (not a folder|a symlink)/);
    const c = makeEnv('strata-attack-carol-');
    try {
      const imp = await c.cli('layer', 'import', path.join(t.dir, 'evil.tar.gz'));
      assert.strictEqual(imp.code, 1);
      assert.match(imp.stderr, /E_ARCHIVE: .*files is (not a folder|a symlink)/);
      assert.deepStrictEqual(fs.readdirSync(path.join(c.home, 'layers')), []);
    } finally {
      await c.cleanup();
    }
    await victimsWork();
  });

  it('refuses a declared size of 1 TiB, writing nothing of it, and a teammate that left is not chosen again', async () => {
    await resetNode20();
    const m = await mallory(t.url);
    const stop = serve(m, good20, 2 ** 40);
    // Another announces node20 and leaves at once.
    const gone = await mallory(t.url);
    gone.send({ t: 'presence', presence: signedPresence(TEAM, gone.identity, { has: { node20: digest20 } }) });
    await sleep(200);
    gone.close();
    await alice.ok('activate', 'node20');
    for (const e of [alice, bob]) {
      await eventually('the declared size to be refused', () =>
        new RegExp(`${m.agent} declares node20 as 1099511627776 bytes, more than the \\d+ a pull accepts`).test(log(e)),
      );
      const pulls = path.join(e.home, 'pulls');
      const sizes = fs.existsSync(pulls) ? fs.readdirSync(pulls).map((n) => fs.statSync(path.join(pulls, n)).size) : [];
      assert.ok(
        sizes.every((s) => s === 0),
        `nothing of the 1 TiB was written: ${sizes}`,
      );
    }
    stop();
    const honest = await mallory(t.url);
    const stopHonest = serve(honest, good20);
    await bothPulledGood20();
    stopHonest();
    for (const e of [alice, bob]) {
      const tries = log(e).match(new RegExp(`pulling node20 from ${gone.agent}`, 'g')) ?? [];
      assert.ok(tries.length <= 1, `the departed teammate was tried ${tries.length} times`);
    }
    await victimsWork();
  });

  it('does not serve a hand-edited layer.json whose mapping leads out through a symlink', async () => {
    writeTree(path.join(t.dir, 'srcesc'), { 'tools/x': 'x\n' });
    await bob.ok('layer', 'create', 'esc', '--from', path.join(t.dir, 'srcesc'));
    fs.symlinkSync('/etc', path.join(bob.home, 'layers/esc/files/out'));
    const spec = path.join(bob.home, 'layers/esc/layer.json');
    const j = JSON.parse(fs.readFileSync(spec, 'utf8'));
    j.mappings = [{ original: '/etc', destination: 'out' }];
    fs.writeFileSync(spec, JSON.stringify(j));
    const r = await bob.cli('activate', 'esc');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_MAPPING_ESCAPE: .*leads outside the layer through a symlink/);
    assert.strictEqual(read(path.join(bob.mnt, 'etc/shadow')), null);
    await victimsWork();
  });

  it('stays small under 20,000 forged senders, and the victims keep working', async () => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => mallory(t.url)));
    for (const c of conns) c.ws.removeAllListeners('message'); // what the relay sends back is not kept
    const per = 2500;
    await Promise.all(
      conns.map(async (c) => {
        for (let i = 0; i < per && !c.closed; i += 100) {
          for (let j = 0; j < 100; j++) {
            const sender = Identity.generate();
            c.send({ t: 'event', event: signedEvent(TEAM, sender, 1, [{ key: 'layer:spam', value: { active: (i + j) % 2 === 0 } }]) });
          }
          await sleep(400); // well within the relay's 500 frames/s per connection
        }
      }),
    );
    // Each sender's presence comes after its events on the same links: once both victims list all
    // eight, they have handled the whole flood. (One the relay cut off, for its rate, sends none.)
    for (const c of conns) if (!c.closed) c.send({ t: 'presence', presence: signedPresence(TEAM, c.identity) });
    for (const e of [alice, bob]) {
      await eventually(
        'the victims to handle the whole flood',
        async () => {
          const listed = new Set((await status(e)).peers?.map((p) => p.agent));
          return conns.every((c) => c.closed || listed.has(c.agent));
        },
        300_000,
      );
    }
    const cut = conns.filter((c) => c.closed).length;
    assert.ok(cut < 8, 'the flood reached the victims');
    await victimsWork();
    for (const e of [alice, bob]) {
      const file = path.join(e.home, 'team-state.json');
      const size = fs.statSync(file).size;
      const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
      const senders = Object.keys(saved.seen).length;
      assert.ok(senders > 1000 && senders <= 1024, `${senders} senders remembered (at most 1024, the default maxOrigins)`);
      assert.ok(size < 150 * 1024, `team-state.json is ${size} bytes`);
      assert.ok(!(await history(e)).some((ev) => ev.writes.some((w) => w.key === 'layer:spam')));
    }
  });
});
