/**
 * What the agent tells its subscribers so editors and tools can follow a change (the state event's
 * `change`): the view paths a switch or an active layer's edit touched, and the processes still
 * holding a file the switch replaced, with where that file came from (a layer, or the base).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import { StateEvent } from '../../protocol';
import { AgentClient } from '../../shared/client';
import { eventually } from '../wait';
import { Env, makeEnv, stateEvents, writeTree } from './helpers';

describe('follow: the state event says what a change did to the views', function () {
  this.timeout(60000);
  let e: Env;
  let c: AgentClient;
  const events: StateEvent[] = [];
  const holders: ChildProcessWithoutNullStreams[] = [];
  const tool = () => path.join(e.mnt, 'tools/bin/tool');

  /** A process that holds `file` open until killed. */
  async function hold(file: string): Promise<ChildProcessWithoutNullStreams> {
    const p = spawn('sh', ['-c', `exec 3< '${file}'; echo ready; sleep 60`]);
    holders.push(p);
    await new Promise<void>((res) => p.stdout.once('data', () => res()));
    return p;
  }

  /** The first state event after `since` (an index into `events`) with this reason and a change. */
  const changeOf = (reason: string, since: number) =>
    eventually(`a "${reason}" state event with a change (seen: ${events.map((x) => x.reason).join(', ')})`, () =>
      events.slice(since).find((x) => x.reason === reason && x.change),
    );
  /** The event naming who still holds replaced files: it follows the switch's answer and its first event. */
  const staleOf = (reason: string, since: number) =>
    eventually(`a "${reason}" state event naming stale holders`, () =>
      events.slice(since).find((x) => x.reason === reason && x.change?.stale.length),
    );

  before(async () => {
    e = makeEnv('strata-it-follow-');
    writeTree(e.base, { 'tools/bin/tool': 'base\n', 'README.md': 'hi\n' });
    const src = path.join(e.dir, 'src-a');
    writeTree(src, { 'bin/tool': 'A\n', 'lib/libtool.txt': 'only the layer\n' });
    await e.ok('layer', 'create', 'a', '--from', src);
    await e.ok('layer', 'unmap', 'a', '/');
    await e.ok('layer', 'map', 'a', '/tools', '/');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    c = await stateEvents(e, events);
  });

  after(async () => {
    for (const p of holders) p.kill('SIGKILL');
    c?.close();
    await e?.cleanup();
  });

  it('names the view paths a switch changed, and a base file still held with the layer now over it', async () => {
    const holder = await hold(tool());
    assert.strictEqual(fs.readFileSync(tool(), 'utf8'), 'base\n');
    const since = events.length;
    await e.ok('activate', 'a');
    const ev = await changeOf('activate', since);
    assert.deepStrictEqual(ev.change!.paths, ['/tools']);
    const st = await staleOf('activate', since);
    assert.deepStrictEqual(
      st.change!.stale.map((s) => [s.pid, s.path, s.layer]),
      [[holder.pid, tool(), null]],
    );
    assert.strictEqual(st.change!.stale[0].command, 'sh');
    holder.kill('SIGKILL');
  });

  it("names a process still holding a deactivated layer's file, with that layer", async () => {
    const holder = await hold(tool());
    assert.strictEqual(fs.readFileSync(tool(), 'utf8'), 'A\n');
    const since = events.length;
    await e.ok('deactivate', 'a', '--force');
    const ev = await changeOf('deactivate', since);
    assert.deepStrictEqual(ev.change!.paths, ['/tools']);
    assert.deepStrictEqual(
      (await staleOf('deactivate', since)).change!.stale.map((s) => [s.pid, s.path, s.layer]),
      [[holder.pid, tool(), 'a']],
    );
    holder.kill('SIGKILL');
  });

  it('names nobody when the holders are gone, and nothing for a switch that touches no held file', async () => {
    await eventually('the holders to end', () => holders.every((h) => h.exitCode !== null || h.signalCode !== null));
    const since = events.length;
    await e.ok('activate', 'a');
    const ev = await changeOf('activate', since);
    assert.deepStrictEqual(ev.change!.stale, []);
  });

  it("an active layer's edit announces the paths it touched; an inactive one's announces none", async () => {
    let since = events.length;
    await e.ok('layer', 'map', 'a', '/docs', 'lib');
    const ev = await changeOf('layer-changed', since);
    assert.deepStrictEqual([...ev.change!.paths].sort(), ['/docs', '/tools']);
    await e.ok('deactivate', 'a');
    since = events.length;
    await e.ok('layer', 'unmap', 'a', '/docs');
    await eventually('the edit to be announced', () => events.slice(since).some((x) => x.reason === 'layer-changed'));
    assert.ok(!events.slice(since).some((x) => x.reason === 'layer-changed' && x.change), 'an inactive layer changed nothing in the views');
  });
});
