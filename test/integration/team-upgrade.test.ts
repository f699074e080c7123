/**
 * Upgrading to agent keys (protocol 2): an agent that joined before has team.json with an id of
 * the old kind, no team.key and a format-1 team-state.json. It must come back up in the team by
 * itself: a new key (0600) and id, its state started over with a logged reason, and it switches
 * with its teammates as before.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env, writeTree } from './helpers';
import { TeamFixture, eventually, readText as read, startTeam } from './team-helpers';
import { TeamStatus } from '../../protocol';
import { AgentClient } from '../../shared/client';
import { socketPath } from '../../shared/paths';
import { digestLayerDir } from '../../daemon/team/digest';

const TEAM = 'acme';
const NODE18 = '#!/bin/sh\necho v18\n';
const OLD_ID = 'alice-364818bd';

describe('team: upgrading an agent from before keys', function () {
  this.timeout(300_000);
  let t: TeamFixture;
  let alice: Env;
  let bob: Env;

  before(async () => {
    t = await startTeam('strata-upgrade-', ['--team', TEAM]);
    const dir = t.dir;
    writeTree(path.join(dir, 'src18'), { 'bin/node': NODE18 });
    writeTree(path.join(dir, 'src22'), { 'lib/node22': 'node 22\n' });
    const agent = (name: string) =>
      t.agent({
        prefix: `strata-upgrade-${name}-`,
        base: { 'bin/node': '#!/bin/sh\necho system\n' },
        layers: {
          node18: ['--from', path.join(dir, 'src18'), '--version', '18'],
          node22: ['--from', path.join(dir, 'src22'), '--version', '22'],
        },
      });
    alice = await agent('alice');
    bob = await agent('bob');
    await alice.ok('team', 'init', '--team', TEAM, '--relay', t.url, '--layer', 'node18', '--team-file', t.teamFile);
    await t.join(alice, 'alice');
    await t.join(bob, 'bob');
  });

  after(async () => t?.cleanup());

  it('makes a key, starts its format-1 state over with the reason logged, and switches with the team', async () => {
    await alice.ok('agent', 'stop');
    // What an agent of protocol 1 left: an id that is a name and a random suffix, no key, state format 1.
    const cfgFile = path.join(alice.home, 'team.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, agentId: OLD_ID }));
    fs.rmSync(path.join(alice.home, 'team.key'));
    const clock = { wall: Date.now(), logical: 0, agent: OLD_ID };
    fs.writeFileSync(
      path.join(alice.home, 'team-state.json'),
      JSON.stringify({ format: 1, self: OLD_ID, seq: 7, clock, registers: {}, seen: { [OLD_ID]: { upTo: 7, above: [] } }, history: [] }),
    );
    await alice.ok('agent', 'start');
    const st = await alice.json<TeamStatus>('team', 'status');
    assert.strictEqual(st.joined, true);
    assert.match(st.agent!, /^[A-Z2-7]{8}(-[A-Z2-7]{8}){3}$/);
    const log = read(path.join(alice.home, 'agent.log')) ?? '';
    assert.match(
      log,
      new RegExp(
        `it has no key yet \\(.*team\\.key\\); its team state \\(format 1\\) starts over, peers send what they hold: this agent takes a new key and id, ${st.agent}`,
      ),
    );
    assert.doesNotMatch(log, /could not rejoin/);
    assert.strictEqual(fs.statSync(path.join(alice.home, 'team.key')).mode & 0o777, 0o600);
    assert.strictEqual(JSON.parse(fs.readFileSync(cfgFile, 'utf8')).agentId, st.agent);
    // It switches for the team, and bob follows; both ways.
    const bobId = (await bob.json<TeamStatus>('team', 'status')).agent!;
    await eventually('alice and bob to see each other', async () =>
      (await alice.json<TeamStatus>('team', 'status')).peers?.some((p) => p.agent === bobId),
    );
    const r = await alice.json<{ decision: string }>('activate', 'node18');
    assert.match(r.decision, new RegExp(`^${st.agent}:1$`));
    await eventually('bob to follow alice', () => read(path.join(bob.mnt, 'bin/node')) === NODE18, 60_000);
    await bob.ok('deactivate', 'node18');
    await eventually('alice to follow bob', () => read(path.join(alice.mnt, 'bin/node')) !== NODE18, 60_000);
    await eventually('the state saved in format 2', () => JSON.parse(read(path.join(alice.home, 'team-state.json')) ?? '{}').format === 2);
    const users = (await bob.json<{ user: string }[]>('team', 'history')).map((e) => e.user);
    assert.deepStrictEqual(users, ['alice', 'bob']);
  });

  it('keeps the decisions on a layer a reloaded team file adds, made before and after the reload', async () => {
    // team.reload (the extension's "Update Team File") with a file that names one more layer.
    const spec = JSON.parse(fs.readFileSync(t.teamFile, 'utf8'));
    spec.layers.node22 = { digest: await digestLayerDir(path.join(alice.home, 'layers/node22')) };
    const teamText = JSON.stringify(spec);
    const reload = async (e: Env) => {
      const c = new AgentClient(socketPath(e.home, e.env));
      await c.connect();
      try {
        await c.call('team.reload', { teamText });
      } finally {
        c.close();
      }
    };
    await reload(alice);
    await alice.ok('activate', 'node22'); // before bob knows node22 for a team layer
    await reload(bob);
    const on = (e: Env) => read(path.join(e.mnt, 'lib/node22')) === 'node 22\n';
    await eventually('bob to run node22 as the team decided before his reload', () => on(bob), 60_000);
    assert.ok((await bob.json<TeamStatus>('team', 'status')).desired?.includes('node22'));
    await bob.ok('deactivate', 'node22'); // and a decision made after it
    await eventually('alice to follow bob', () => !on(alice), 60_000);
  });
});
