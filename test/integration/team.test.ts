/**
 * Several real agents (separate STRATA_HOMEs, real FUSE views) and a standalone relay on
 * loopback: activations travel, swaps are one decision, late joiners catch up, missing layers are
 * pulled and verified, a killed agent rejoins with what it acknowledged.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Env, makeEnv, writeTree } from './helpers';
import { TeamFixture, eventually, layerDigests, readText as read, startTeam } from './team-helpers';
import { digestLayerDir } from '../../daemon/team/digest';
import { TeamStatus, eventId } from '../../protocol';

describe('team: activations relayed between agents', function () {
  this.timeout(120000);
  let t: TeamFixture;
  let a: Env, b: Env, c: Env;

  const node = (e: Env) => read(path.join(e.mnt, 'bin/node'));
  const NODE18 = '#!/bin/sh\necho v18\n';
  const NODE20 = '#!/bin/sh\necho v20\n';

  const agent = (withLayers: string[]) =>
    t.agent({
      prefix: 'strata-team-',
      base: { 'bin/node': '#!/bin/sh\necho system\n', README: 'project\n' },
      layers: Object.fromEntries(withLayers.map((l) => [l, ['--from', path.join(t.dir, l), '--version', l.slice(4)]])),
    });

  before(async () => {
    t = await startTeam('strata-team-shared-');
    writeTree(path.join(t.dir, 'node18'), { 'bin/node': NODE18 });
    writeTree(path.join(t.dir, 'node20'), { 'bin/node': NODE20, 'lib/big': 'x'.repeat(300 * 1024) });
    a = await agent(['node18', 'node20']);
    b = await agent(['node18', 'node20']);
    // The team file pins each team layer's content digest, as a lock file pins packages.
    t.writeTeamFile({ layers: await layerDigests(a.home, ['node18', 'node20']), slots: { node: ['node18', 'node20'] } });
    await t.join(a, 'alice');
    await t.join(b, 'bob');
    await t.sees(a, 'bob');
  });

  after(async () => t?.cleanup());

  it("activate on A makes B's view redirect", async () => {
    assert.strictEqual(node(b), '#!/bin/sh\necho system\n');
    const r = await a.json<{ decision: string }>('activate', 'node20');
    assert.match(r.decision, /^[A-Z2-7]{8}(-[A-Z2-7]{8}){3}:\d+$/);
    await eventually('B to serve node 20', () => node(b) === NODE20);
    const st = await eventually('B to acknowledge', async () => {
      const s = await a.json<TeamStatus>('team', 'status');
      return s.lastDecision && s.lastDecision.applied === 2 ? s : null;
    });
    assert.deepStrictEqual(st.desired, ['node20']);
    assert.strictEqual(st.lastDecision!.of, 2);
  });

  it('deactivate on B makes A pass through again', async () => {
    await b.ok('deactivate', 'node20');
    await eventually('A to pass through', () => node(a) === '#!/bin/sh\necho system\n');
  });

  it('says so when deactivating a team layer the team does not run', async () => {
    const r = await a.cli('deactivate', 'node20');
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /E_LAYER_INACTIVE: layer "node20" is not active/);
  });

  it('swaps within a slot as one decision: never both, never neither once applied', async () => {
    await a.ok('activate', 'node18');
    await eventually('B on node 18', () => node(b) === NODE18);
    await b.ok('swap', 'node18', 'node20');
    await eventually('A on node 20', () => node(a) === NODE20);
    const sa = await a.json<{ active: string[] }>('status');
    assert.deepStrictEqual(sa.active, ['node20']);
    const h = await a.json<{ writes: { key: string }[]; user: string }[]>('team', 'history');
    const last = h[h.length - 1];
    assert.deepStrictEqual(
      last.writes.map((w) => w.key),
      ['slot:node'],
    );
    assert.strictEqual(last.user, 'bob');
  });

  it('switches personal and team layers named together: personal ones here only, team ones for everyone', async () => {
    writeTree(path.join(t.dir, 'tools'), { 'opt/tools/tool': 'tool\n' });
    await a.ok('layer', 'create', 'tools', '--from', path.join(t.dir, 'tools'));
    const r = await a.json<{ active: string[]; decision?: string }>('activate', 'tools', 'node18');
    assert.deepStrictEqual([...r.active].sort(), ['node18', 'tools']);
    assert.match(r.decision ?? '', /^[A-Z2-7]{8}(-[A-Z2-7]{8}){3}:\d+$/);
    await eventually('B on node 18', () => node(b) === NODE18);
    assert.deepStrictEqual((await b.json<{ active: string[] }>('status')).active, ['node18']);
    const d = await a.json<{ active: string[]; decision?: string }>('deactivate', 'tools');
    assert.deepStrictEqual(d.active, ['node18']);
    assert.strictEqual(d.decision, undefined, 'a personal switch makes no team decision');
    await a.ok('swap', 'node18', 'node20');
    await eventually('B on node 20', () => node(b) === NODE20);
  });

  it("names the user's team mistakes with their own codes", async () => {
    const slot = await a.cli('activate', 'node18', 'node20');
    assert.strictEqual(slot.code, 1);
    assert.match(slot.stderr, /E_TEAM_SLOT: "node18" and "node20" are both in slot node/);
    const mixed = await a.cli('swap', 'node20', 'tools');
    assert.match(mixed.stderr, /E_BAD_REQUEST: cannot swap team layer and personal layer/);
    const itself = await a.cli('swap', 'node20', 'node20');
    assert.strictEqual(itself.code, 1);
    assert.match(itself.stderr, /E_BAD_REQUEST: cannot swap "node20" for itself/);
    const again = await a.cli('team', 'join', t.url, '--secret-file', t.secret, '--team-file', t.teamFile);
    assert.strictEqual(again.code, 1);
    assert.match(again.stderr, /E_TEAM_JOINED: already in team "acme"/);
    assert.match(again.stderr, /strata team leave/);
    const prune = await a.cli('team', 'prune');
    assert.strictEqual(prune.code, 1);
    assert.match(prune.stderr, /E_TEAM_NO_STORE: team acme keeps no layer archives to prune/);
    assert.match(prune.stderr, /Only a team on NATS stores archives/);
  });

  it('says a busy --listen port is in use (join --listen, agent start --listen, relay), and joins nothing', async () => {
    const port = new URL(t.url).port; // the relay holds it
    const busy = `127.0.0.1:${port}`;
    const d = makeEnv('strata-team-');
    t.agents.push(d);
    const join = (...extra: string[]) => d.cli('team', 'join', t.url, '--secret-file', t.secret, '--team-file', t.teamFile, ...extra);
    const r = await join('--listen', busy);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, new RegExp(`E_TEAM_LISTEN: cannot listen on ${busy}: port ${port} is in use`));
    assert.match(r.stderr, new RegExp(`Stop what uses port ${port}`));
    assert.deepStrictEqual(await d.json<TeamStatus>('team', 'status'), { joined: false });
    assert.ok(!fs.existsSync(path.join(d.home, 'team.json')), 'a failed join saves no membership');
    await d.ok('agent', 'stop');
    await d.ok('agent', 'start', '--listen', busy);
    assert.match((await join()).stderr, /E_TEAM_LISTEN: .* is in use/);
    const rl = await d.cli('relay', '--listen', busy, '--secret-file', t.secret);
    assert.strictEqual(rl.code, 1);
    assert.match(rl.stderr, /E_TEAM_LISTEN: .* is in use/);
    // Joined, an agent started with a busy --listen fails to start instead of running outside the team.
    await d.ok('agent', 'stop');
    await d.ok('agent', 'start');
    await d.ok('team', 'join', t.url, '--secret-file', t.secret, '--team-file', t.teamFile);
    await d.ok('agent', 'stop');
    const st = await d.cli('agent', 'start', '--listen', busy);
    assert.strictEqual(st.code, 1, st.stdout);
    assert.match(st.stderr, /E_TEAM_LISTEN: .* is in use/);
    await d.ok('agent', 'start');
    assert.strictEqual((await d.json<TeamStatus>('team', 'status')).joined, true);
    await d.ok('team', 'leave'); // the next tests count the team's members
  });

  it('lets a late joiner catch up, pulling the layer it lacks and verifying it', async () => {
    c = await agent(['node18']);
    await t.join(c, 'carol');
    await eventually('C to pull node 20 and serve it', () => node(c) === NODE20, 30000);
    const layer = await c.json<{ name: string }>('layer', 'show', 'node20');
    assert.strictEqual(layer.name, 'node20');
    assert.strictEqual(
      await digestLayerDir(path.join(c.home, 'layers/node20')),
      JSON.parse(fs.readFileSync(t.teamFile, 'utf8')).layers.node20.digest,
    );
  });

  it('shows a held layer as drift and does not follow the team for it', async () => {
    await c.ok('team', 'hold', 'node20');
    await a.ok('deactivate', 'node20');
    await eventually('A to pass through', () => node(a) === '#!/bin/sh\necho system\n');
    await eventually('B to pass through', () => node(b) === '#!/bin/sh\necho system\n');
    assert.strictEqual(node(c), NODE20);
    const st = await eventually("A to see C's drift", async () => {
      const s = await a.json<TeamStatus>('team', 'status');
      const carol = s.peers?.find((p) => p.user === 'carol');
      return carol && carol.drift.includes('+node20') ? carol : null;
    });
    assert.deepStrictEqual(st.held, ['node20']);
    await c.ok('team', 'follow', 'node20');
    await eventually('C to follow the team again', () => node(c) === '#!/bin/sh\necho system\n');
  });

  it('reverts a decision', async () => {
    await a.ok('activate', 'node18');
    await eventually('B on node 18', () => node(b) === NODE18);
    const h = await b.json<{ origin: string; seq: number }[]>('team', 'history');
    const id = eventId(h[h.length - 1]);
    await b.ok('team', 'revert', id);
    await eventually('A back to system', () => node(a) === '#!/bin/sh\necho system\n');
  });

  it('rejoins after kill -9 with the state it acknowledged', async () => {
    await a.ok('activate', 'node20');
    await eventually('B on node 20', () => node(b) === NODE20);
    const { pid } = await b.json<{ pid: number }>('status');
    process.kill(pid, 'SIGKILL');
    await a.ok('swap', 'node20', 'node18'); // decided while B is down
    await b.ok('agent', 'start');
    const s = await b.json<{ active: string[] }>('status');
    assert.ok(s.active.includes('node20') || s.active.includes('node18'), `B restarted with ${s.active}`);
    await eventually('B to converge on node 18', () => node(b) === NODE18);
    const sb = await b.json<TeamStatus>('team', 'status');
    assert.deepStrictEqual(sb.desired, ['node18']);
  });

  it('waits for idle teammates with --when-idle, and says who is busy on timeout', async () => {
    const holder = spawn('sh', ['-c', `exec 3< ${path.join(b.mnt, 'bin/node')}; echo ready; sleep 30`]);
    await new Promise<void>((res) => holder.stdout!.once('data', () => res()));
    try {
      await eventually('B to report node18 busy', async () => {
        const s = await a.json<TeamStatus>('team', 'status');
        return s.peers?.find((p) => p.user === 'bob')?.busy.includes('node18');
      });
      const r = await a.cli('activate', 'node20', '--when-idle', '--timeout', '1');
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /E_TEAM_BUSY: .*bob@/);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
