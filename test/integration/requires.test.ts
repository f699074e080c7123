/**
 * Layer prerequisites (`requires` in layer.json): activating a layer brings what it requires in
 * the same switch, a required layer cannot be switched off under the layer needing it, a missing
 * requirement or a cycle is refused; in a team, one decision covers them. Also validation's
 * warning for a destination the layer does not hold.
 */
import * as assert from 'assert';
import * as path from 'path';
import { LayerInfo, Problem, StateEvent, TeamEvent, TeamStatus } from '../../protocol';
import { AgentClient } from '../../shared/client';
import { StrataError } from '../../shared/errors';
import { eventually } from '../wait';
import { Env, makeEnv, stateEvents, writeTree } from './helpers';
import { TeamFixture, layerDigests, readText as read, startTeam } from './team-helpers';

async function refused(p: Promise<unknown>): Promise<StrataError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StrataError, String(e));
    return e;
  }
  throw new Error('expected a refusal');
}

describe('requires: a layer brings the layers it requires', function () {
  this.timeout(60000);
  let e: Env;
  let c: AgentClient;
  const events: StateEvent[] = [];
  const active = async () => (await e.json<{ active: string[] }>('status')).active;

  before(async () => {
    e = makeEnv('strata-it-requires-');
    writeTree(e.base, { 'README.md': 'project\n', 'tools/': '' });
    writeTree(path.join(e.dir, 'jdk'), { 'bin/java': 'java 21\n' });
    writeTree(path.join(e.dir, 'maven'), { 'bin/mvn': 'mvn 3\n' });
    writeTree(path.join(e.dir, 'other'), { 'bin/other': 'other\n' });
    await e.ok('layer', 'create', 'jdk', '--from', path.join(e.dir, 'jdk'), '--map', '/tools/java=/');
    await e.ok('layer', 'create', 'maven', '--from', path.join(e.dir, 'maven'), '--map', '/tools/maven=/', '--requires', 'jdk');
    await e.ok('layer', 'create', 'other', '--from', path.join(e.dir, 'other'), '--map', '/tools/other=/');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    c = await stateEvents(e, events);
  });

  after(async () => {
    c?.close();
    await e?.cleanup();
  });

  /** The state events since `since`, once an edit of an inactive layer (announced after them) has come. */
  async function eventsSince(since: number): Promise<StateEvent[]> {
    const mark = events.length;
    await c.call('layer.hide', { name: 'other', path: `/marker-${mark}` });
    await eventually('the marker edit to be announced', () => events.slice(mark).some((x) => x.reason === 'layer-changed'));
    return events.slice(since).filter((x) => x.reason !== 'layer-changed');
  }

  it('shows the requirement both ways', async () => {
    assert.match(await e.ok('layer', 'show', 'maven'), /^ {2}requires: {4}jdk$/m);
    assert.match(await e.ok('layer', 'show', 'jdk'), /^ {2}required by: maven$/m);
    const maven = (await c.call('layer.list', {})).find((l: LayerInfo) => l.name === 'maven');
    assert.deepStrictEqual(maven?.requires, ['jdk']);
  });

  it('activating it activates what it requires in one switch: one state event with both layers', async () => {
    const since = events.length;
    const r = await e.json<{ active: string[] }>('activate', 'maven');
    assert.deepStrictEqual(r.active, ['jdk', 'maven']);
    assert.strictEqual(read(path.join(e.mnt, 'tools/java/bin/java')), 'java 21\n');
    assert.strictEqual(read(path.join(e.mnt, 'tools/maven/bin/mvn')), 'mvn 3\n');
    const evs = await eventsSince(since);
    assert.deepStrictEqual(
      evs.map((x) => x.reason),
      ['activate'],
    );
    assert.deepStrictEqual([...evs[0].change!.paths].sort(), ['/tools/java', '/tools/maven']);
  });

  it('refuses to deactivate a required layer, naming who requires it and what to do (even with --force)', async () => {
    for (const args of [
      ['deactivate', 'jdk'],
      ['deactivate', 'jdk', '--force'],
    ]) {
      const r = await e.cli(...args);
      assert.strictEqual(r.code, 1, r.stderr);
      assert.match(r.stderr, /E_LAYER_REQUIRED: "jdk" is required by active layer "maven"/);
      assert.match(r.stderr, /strata deactivate jdk maven/);
    }
    assert.deepStrictEqual(await active(), ['jdk', 'maven']);
    assert.deepStrictEqual((await e.json<{ active: string[] }>('deactivate', 'jdk', 'maven')).active, []);
  });

  it("a swap brings the new layer's requirements along", async () => {
    await e.ok('activate', 'other');
    assert.deepStrictEqual((await e.json<{ active: string[] }>('swap', 'other', 'maven')).active, ['jdk', 'maven']);
    const r = await e.cli('swap', 'jdk', 'other');
    assert.match(r.stderr, /E_LAYER_REQUIRED: "jdk" is required by active layer "maven"/);
    await e.ok('deactivate', 'maven', 'jdk');
  });

  it('a required layer missing from the store fails the activation, naming it; nothing switches', async () => {
    writeTree(path.join(e.dir, 'gradle'), { 'bin/gradle': 'gradle\n' });
    await e.ok('layer', 'create', 'gradle', '--from', path.join(e.dir, 'gradle'), '--map', '/tools/gradle=/', '--requires', 'kotlin');
    const since = events.length;
    const r = await e.cli('activate', 'gradle', 'other');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_LAYER_UNKNOWN: layer "gradle" requires "kotlin", which is not in the store/);
    assert.deepStrictEqual(await active(), []);
    assert.deepStrictEqual(await eventsSince(since), []);
  });

  it('refuses a requirement cycle on save and in validation, and a layer requiring itself', async () => {
    const jdk = await c.call('layer.show', { name: 'jdk' });
    const { active: _a, writableBytes: _w, digest: _d, ...spec } = jdk;
    void [_a, _w, _d];
    const cyclic = { ...spec, requires: ['maven'] };
    const err = await refused(c.call('layer.update', { name: 'jdk', spec: cyclic }));
    assert.strictEqual(err.code, 'E_LAYER_INVALID');
    assert.match(err.message, /requires\[0\]: requirements would go round in a cycle: "jdk" → "maven" → "jdk"/);
    const { problems } = await c.call('layer.validate', { spec: cyclic });
    assert.ok(
      problems.some((p: Problem) => p.code === 'E_LAYER_INVALID' && /cycle/.test(p.message) && p.severity === undefined),
      JSON.stringify(problems),
    );
    assert.strictEqual((await c.call('layer.show', { name: 'jdk' })).requires, undefined, 'nothing was saved');
    const self = await e.cli('layer', 'create', 'loop', '--from', path.join(e.dir, 'jdk'), '--requires', 'loop');
    assert.strictEqual(self.code, 1);
    assert.match(self.stderr, /E_LAYER_INVALID: .*requires\[0\]: a layer cannot require itself/);
  });

  it('validation warns of a destination the layer does not hold; `layer map` says so and maps', async () => {
    const r = await e.cli('layer', 'map', 'jdk', '/opt/lib', 'lib');
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /^strata: warning: mappings\[1\]\.destination: "lib" is not in the layer's files/m);
    assert.match(r.stdout, /\/opt\/lib -> lib/);
    const jdk = await c.call('layer.show', { name: 'jdk' });
    const { active: _a, writableBytes: _w, digest: _d, ...spec } = jdk;
    void [_a, _w, _d];
    const { problems } = await c.call('layer.validate', { spec });
    assert.deepStrictEqual(
      problems.map((p: Problem) => [p.code, p.severity]),
      [['E_MAPPING_MISSING', 'warning']],
    );
    // A destination the layer holds is no problem.
    const held = await e.cli('layer', 'map', 'jdk', '/opt/bin', 'bin');
    assert.strictEqual(held.stderr.match(/warning/g)?.length, 1, held.stderr);
  });
});

describe('requires: a team decision covers what a team layer requires', function () {
  this.timeout(120000);
  let t: TeamFixture;
  let a: Env, b: Env;

  const agent = () =>
    t.agent({
      prefix: 'strata-team-requires-',
      base: { 'tools/': '' },
      layers: {
        jdk: ['--from', path.join(t.dir, 'jdk'), '--map', '/tools/java=/'],
        maven: ['--from', path.join(t.dir, 'maven'), '--map', '/tools/maven=/', '--requires', 'jdk'],
        mine: ['--from', path.join(t.dir, 'mine')],
        ant: ['--from', path.join(t.dir, 'ant'), '--map', '/tools/ant=/', '--requires', 'mine'],
      },
    });

  before(async () => {
    t = await startTeam('strata-team-requires-');
    writeTree(path.join(t.dir, 'jdk'), { 'bin/java': 'java 21\n' });
    writeTree(path.join(t.dir, 'maven'), { 'bin/mvn': 'mvn 3\n' });
    writeTree(path.join(t.dir, 'mine'), { 'opt/mine': 'mine\n' });
    writeTree(path.join(t.dir, 'ant'), { 'bin/ant': 'ant\n' });
    a = await agent();
    b = await agent();
    t.writeTeamFile({ layers: await layerDigests(a.home, ['jdk', 'maven', 'ant']) });
    await t.join(a, 'alice');
    await t.join(b, 'bob');
    await t.sees(a, 'bob');
  });

  after(async () => t?.cleanup());

  it('one decision activates the layer and its requirement, on the teammate too', async () => {
    const r = await a.json<{ active: string[]; decision: string }>('activate', 'maven');
    assert.deepStrictEqual([...r.active].sort(), ['jdk', 'maven']);
    const h = await a.json<TeamEvent[]>('team', 'history');
    assert.strictEqual(h.length, 1);
    assert.deepStrictEqual(h[0].writes.map((w) => w.key).sort(), ['layer:jdk', 'layer:maven']);
    await eventually('B to run both', () => read(path.join(b.mnt, 'tools/java/bin/java')) === 'java 21\n');
    assert.strictEqual(read(path.join(b.mnt, 'tools/maven/bin/mvn')), 'mvn 3\n');
    assert.deepStrictEqual([...(await b.json<{ active: string[] }>('status')).active].sort(), ['jdk', 'maven']);
  });

  it('refuses to switch the requirement off under the layer needing it', async () => {
    const r = await b.cli('deactivate', 'jdk');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_LAYER_REQUIRED: "jdk" is required by active layer "maven"/);
  });

  it("a personal layer holds the team layer it requires: a teammate's decision leaves it here until that layer is off", async () => {
    writeTree(path.join(t.dir, 'tool'), { 'bin/tool': 'tool\n' });
    await a.ok('layer', 'create', 'tool', '--from', path.join(t.dir, 'tool'), '--map', '/tools/tool=/', '--requires', 'jdk');
    await a.ok('activate', 'tool');
    await b.ok('deactivate', 'maven', 'jdk');
    await eventually('A to follow for maven', async () => !(await a.json<{ active: string[] }>('status')).active.includes('maven'));
    assert.deepStrictEqual([...(await a.json<{ active: string[] }>('status')).active].sort(), ['jdk', 'tool']);
    assert.strictEqual(read(path.join(a.mnt, 'tools/java/bin/java')), 'java 21\n', 'the prerequisite stays under the tool');
    assert.deepStrictEqual((await a.json<TeamStatus>('team', 'status')).held, ['jdk']);
    await eventually('B to see that alice holds jdk', async () =>
      (await b.json<TeamStatus>('team', 'status')).peers?.some((p) => p.user === 'alice' && p.held?.includes('jdk')),
    );
    await a.ok('deactivate', 'tool');
    assert.deepStrictEqual((await a.json<{ active: string[] }>('status')).active, [], 'jdk follows the team again');
    assert.strictEqual(read(path.join(a.mnt, 'tools/java/bin/java')), null);
    assert.deepStrictEqual((await a.json<TeamStatus>('team', 'status')).held, []);
  });

  it('refuses a team layer requiring a layer the team file does not list', async () => {
    const decisions = (await a.json<TeamEvent[]>('team', 'history')).length;
    const r = await a.cli('activate', 'ant');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_TEAM_INVALID: "ant" requires "mine", which the team file .* does not list/);
    assert.match(r.stderr, /strata team add mine/);
    assert.strictEqual((await a.json<TeamEvent[]>('team', 'history')).length, decisions, 'no decision was made');
  });
});
