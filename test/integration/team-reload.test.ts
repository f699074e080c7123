/**
 * A changed team file reaches joined agents without leaving the team: `team add` makes the agent
 * that ran it read the file again, and `team reload` does it on a teammate's machine.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env, makeEnv, writeTree } from './helpers';
import { Relay, eventually, startRelay, writeSecret } from './team-helpers';
import { TeamStatus } from '../../protocol';

describe('team: a changed team file, read again without leaving', function () {
  this.timeout(120000);
  let shared: string;
  let relay: Relay;
  let teamFile: string;
  const agents: Env[] = [];
  let a: Env, b: Env;
  const tool = (e: Env) => fs.readFileSync(path.join(e.mnt, 'bin/tool'), 'utf8');

  async function agent(name: string, secret: string): Promise<Env> {
    const e = makeEnv('strata-reload-');
    agents.push(e);
    writeTree(e.base, { 'bin/tool': 'base\n' });
    for (const l of ['node20', 'tools']) await e.ok('layer', 'create', l, '--from', path.join(shared, l));
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    await e.ok('team', 'join', relay.url, '--secret-file', secret, '--team-file', teamFile, '--name', name);
    return e;
  }

  before(async () => {
    shared = fs.mkdtempSync('/tmp/strata-reload-shared-');
    writeTree(path.join(shared, 'node20'), { 'bin/node': 'v20\n' });
    writeTree(path.join(shared, 'tools'), { 'bin/tool': 'tools\n' });
    const secret = writeSecret(shared);
    relay = await startRelay(secret);
    teamFile = path.join(shared, 'strata.team.json');
    const maker = makeEnv('strata-reload-');
    agents.push(maker);
    for (const l of ['node20', 'tools']) await maker.ok('layer', 'create', l, '--from', path.join(shared, l));
    await maker.ok('team', 'init', '--team-file', teamFile, '--relay', relay.url, '--layer', 'node20');
    await maker.ok('agent', 'stop');
    a = await agent('alice', secret);
    b = await agent('bob', secret);
  });

  after(async () => {
    for (const e of agents) await e.cleanup();
    relay?.stop();
    fs.rmSync(shared, { recursive: true, force: true });
  });

  it('team add on one machine and team reload on the other make a new team layer switch together', async () => {
    const layers = async (e: Env) => (await e.json<TeamStatus>('team', 'status')).teamLayers;
    assert.deepStrictEqual(await layers(a), ['node20']);
    const added = await a.cli('team', 'add', 'tools', '--team-file', teamFile);
    assert.strictEqual(added.code, 0, added.stderr);
    assert.match(added.stderr, /this agent now uses the changed team file/);
    assert.deepStrictEqual(await layers(a), ['node20', 'tools']);
    assert.deepStrictEqual(await layers(b), ['node20'], 'bob has not read it yet');
    const r = await b.cli('team', 'reload');
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /team layers: node20, tools/);
    assert.deepStrictEqual(await layers(b), ['node20', 'tools']);
    // Now a team layer on both: alice's switch is a team decision that bob's view follows.
    const d = await a.json<{ decision?: string }>('activate', 'tools');
    assert.ok(d.decision, 'activating tools made a team decision');
    await eventually('bob to serve tools', () => tool(b) === 'tools\n');
  });

  it('says so when the agent is in no team', async () => {
    const lone = makeEnv('strata-reload-');
    agents.push(lone);
    await lone.ok('agent', 'start');
    const r = await lone.cli('team', 'reload');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_TEAM_NOT_JOINED: this agent is not in a team/);
  });
});
