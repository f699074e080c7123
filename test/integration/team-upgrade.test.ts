/**
 * Upgrading to agent keys (protocol 2): an agent that joined before has team.json with an id of
 * the old kind, no team.key and a format-1 team-state.json. It must come back up in the team by
 * itself: a new key (0600) and id, its state started over with a logged reason, and it switches
 * with its teammates as before.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env, makeEnv, writeTree } from './helpers';
import { Relay, eventually, startRelay, writeSecret } from './team-helpers';
import { TeamStatus } from '../../protocol';

const TEAM = 'acme';
const NODE18 = '#!/bin/sh\necho v18\n';
const OLD_ID = 'alice-364818bd';
const read = (p: string): string | null => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};

describe('team: upgrading an agent from before keys', function () {
  this.timeout(300_000);
  let dir: string;
  let relay: Relay;
  let alice: Env;
  let bob: Env;

  before(async () => {
    dir = fs.mkdtempSync('/tmp/strata-upgrade-');
    const secret = writeSecret(dir);
    relay = await startRelay(secret, ['--team', TEAM]);
    writeTree(path.join(dir, 'src18'), { 'bin/node': NODE18 });
    const agent = async (name: string) => {
      const e = makeEnv(`strata-upgrade-${name}-`);
      writeTree(e.base, { 'bin/node': '#!/bin/sh\necho system\n' });
      await e.ok('layer', 'create', 'node18', '--from', path.join(dir, 'src18'), '--version', '18');
      await e.ok('view', 'add', e.base, '--at', e.mnt);
      return e;
    };
    alice = await agent('alice');
    bob = await agent('bob');
    const teamFile = path.join(dir, 'strata.team.json');
    await alice.ok('team', 'init', '--team', TEAM, '--relay', relay.url, '--layer', 'node18', '--team-file', teamFile);
    for (const [e, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const)
      await e.ok('team', 'join', relay.url, '--secret-file', secret, '--team-file', teamFile, '--name', name);
  });

  after(async () => {
    for (const e of [alice, bob]) await e?.cleanup();
    relay?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

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
});
