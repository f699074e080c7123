/**
 * A changed team file reaches joined agents without leaving the team: `team add` makes the agent
 * that ran it read the file again, and `team reload` does it on a teammate's machine.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env, makeEnv, writeTree } from './helpers';
import { TeamFixture, eventually, startTeam } from './team-helpers';
import { TeamStatus } from '../../protocol';

describe('team: a changed team file, read again without leaving', function () {
  this.timeout(120000);
  let t: TeamFixture;
  let a: Env, b: Env;
  const tool = (e: Env) => fs.readFileSync(path.join(e.mnt, 'bin/tool'), 'utf8');

  async function agent(name: string): Promise<Env> {
    const e = await t.agent({
      prefix: 'strata-reload-',
      base: { 'bin/tool': 'base\n' },
      layers: { node20: ['--from', path.join(t.dir, 'node20')], tools: ['--from', path.join(t.dir, 'tools')] },
    });
    await t.join(e, name);
    return e;
  }

  before(async () => {
    t = await startTeam('strata-reload-shared-');
    writeTree(path.join(t.dir, 'node20'), { 'bin/node': 'v20\n' });
    writeTree(path.join(t.dir, 'tools'), { 'bin/tool': 'tools\n' });
    const maker = makeEnv('strata-reload-');
    t.agents.push(maker);
    for (const l of ['node20', 'tools']) await maker.ok('layer', 'create', l, '--from', path.join(t.dir, l));
    await maker.ok('team', 'init', '--team-file', t.teamFile, '--relay', t.url, '--layer', 'node20');
    await maker.ok('agent', 'stop');
    a = await agent('alice');
    b = await agent('bob');
  });

  after(async () => t?.cleanup());

  it('team add on one machine and team reload on the other make a new team layer switch together', async () => {
    const layers = async (e: Env) => (await e.json<TeamStatus>('team', 'status')).teamLayers;
    assert.deepStrictEqual(await layers(a), ['node20']);
    const added = await a.cli('team', 'add', 'tools', '--team-file', t.teamFile);
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
    t.agents.push(lone);
    await lone.ok('agent', 'start');
    const r = await lone.cli('team', 'reload');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_TEAM_NOT_JOINED: this agent is not in a team/);
  });
});
