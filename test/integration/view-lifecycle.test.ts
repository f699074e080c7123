/**
 * A view's server outlives its agent: kill -9 and restart of the agent (also from another runtime
 * folder), "agent stop --keep-views", the server dying under a running agent, and a server that
 * stops answering (the switch is reported and undone everywhere: never half applied).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env, makeEnv, mounted, writeTree } from './helpers';
import { ViewdControl } from '../../daemon/fuse/viewdctl';
import { socketFor, viewsDir } from '../../daemon/fuse/viewserver';
import { runtimeDir } from '../../shared/paths';
import { Shell, alive, mountCount, read, twoLayerEnv, viewServerOf, viewWithOneActive, waitFor } from './view-helpers';
import { lookupsToStat } from './viewd-helpers';
import { eventually } from '../wait';

const LAYER_TOOL = '#!/bin/sh\necho layer-one-longer-output\n';
const BASE_TOOL = '#!/bin/sh\necho base\n';

interface Status {
  pid: number;
  active: string[];
  views: { base: string; state: string; error?: string }[];
}

describe('view server: started as the environment asks', function () {
  it('STRATA_PASSTHROUGH=0 starts view servers without passthrough', async () => {
    process.env.STRATA_PASSTHROUGH = '0';
    let e: Env;
    try {
      e = await viewWithOneActive(); // the agent started with that environment
    } finally {
      delete process.env.STRATA_PASSTHROUGH;
    }
    try {
      const pid = viewServerOf(e.mnt);
      assert.ok(pid, 'a server serves the view');
      assert.ok(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--no-passthrough'));
      assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), LAYER_TOOL);
    } finally {
      await e.cleanup();
    }
  });
});

describe('view add: the warm-up', function () {
  it('lists a new view first, so stats of every file need no LOOKUP; --no-warm leaves it cold', async () => {
    const e = makeEnv();
    try {
      const tree: Record<string, string> = {};
      for (let d = 0; d < 20; d++) for (let f = 0; f < 5; f++) tree[`pkg${d}/lib/f${f}.js`] = 'x';
      writeTree(e.base, tree);
      const files = Object.keys(tree).map((p) => path.join(e.mnt, p));
      const lookupsForStats = async (): Promise<number> => {
        const ctl = await ViewdControl.connect(socketFor(viewsDir(runtimeDir(e.home, e.env)), e.mnt));
        try {
          return await lookupsToStat(ctl, files);
        } finally {
          ctl.close();
        }
      };
      await e.ok('view', 'add', e.base, '--at', e.mnt);
      assert.strictEqual(await lookupsForStats(), 0, 'the warm-up gave the kernel every name');
      await e.ok('view', 'rm', e.base);
      await e.ok('view', 'add', e.base, '--at', e.mnt, '--no-warm');
      assert.ok((await lookupsForStats()) >= files.length, 'without it, every first stat is a LOOKUP');
      // A view the next agent mounts again is listed once that agent answers, not before.
      await e.ok('agent', 'stop');
      await e.ok('agent', 'start');
      const warmed = (): number =>
        fs.readFileSync(path.join(e.home, 'agent.log'), 'utf8').split(`[view] warmed ${e.mnt}: 41 folders, 140 names`).length - 1;
      await eventually('the restored view to be listed', async () => (warmed() === 2 ? true : null));
    } finally {
      await e.cleanup();
    }
  });
});

describe('view server: lives on across agent restarts', function () {
  let e: Env;
  before(async () => {
    e = await viewWithOneActive();
  });
  after(async () => e.cleanup());

  it('keeps the view serving when the agent is killed: a shell inside goes on, and the next agent takes the server over', async () => {
    const { pid } = await e.json<{ pid: number }>('status');
    const server = viewServerOf(e.mnt);
    const shell = new Shell(path.join(e.mnt, 'bin'));
    try {
      assert.strictEqual(await shell.run('./tool'), 'layer-one-longer-output');
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !alive(pid), 'the agent to die');
      assert.ok(mounted(e.mnt));
      assert.strictEqual(await shell.run('./tool; ls | head -1'), 'layer-one-longer-output\nextra');
      await e.ok('agent', 'start');
      const s = await e.json<{ pid: number; views: { state: string }[] }>('status');
      assert.notStrictEqual(s.pid, pid);
      assert.strictEqual(s.views[0].state, 'mounted');
      assert.strictEqual(viewServerOf(e.mnt), server, 'the same server serves the view');
      // The new agent drives it: a switch reaches the shell that lived through the restart.
      await e.ok('deactivate', 'one');
      assert.strictEqual(await shell.run('./tool'), 'base');
      await e.ok('activate', 'one');
      assert.strictEqual(await shell.run('./tool'), 'layer-one-longer-output');
    } finally {
      shell.close();
    }
  });

  it('leaves the views serving on "agent stop --keep-views", and unmounts them on "agent stop"', async () => {
    const server = viewServerOf(e.mnt);
    await e.ok('agent', 'stop', '--keep-views');
    assert.ok(mounted(e.mnt));
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
    await e.ok('agent', 'start');
    const s = await e.json<{ views: { state: string }[] }>('status');
    assert.strictEqual(s.views[0].state, 'mounted');
    assert.strictEqual(viewServerOf(e.mnt), server);
    await e.ok('agent', 'stop');
    assert.ok(!mounted(e.mnt));
    assert.ok(!alive(server!), 'the server is gone');
    await e.ok('agent', 'start'); // back for the next tests
  });

  it('starts the server again when it dies while the agent runs', async () => {
    const server = viewServerOf(e.mnt)!;
    process.kill(server, 'SIGKILL');
    await waitFor(() => viewServerOf(e.mnt) !== null && viewServerOf(e.mnt) !== server, 'a new server');
    await waitFor(() => {
      try {
        return read(path.join(e.mnt, 'bin/tool')) === '#!/bin/sh\necho layer-one-longer-output\n';
      } catch {
        return false;
      }
    }, 'the view to serve the active layer again');
    const s = await e.json<{ views: { state: string }[] }>('status');
    assert.strictEqual(s.views[0].state, 'mounted');
    assert.strictEqual(mountCount(e.mnt), 1);
  });

  it('finds its server by its command line when the next agent runs with another runtime folder', async () => {
    const server = viewServerOf(e.mnt);
    const { pid } = await e.json<Status>('status');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid), 'the agent to die');
    const tmp = path.join(e.dir, 'other-tmp');
    fs.mkdirSync(tmp, { mode: 0o700 });
    e.env.TMPDIR = tmp;
    try {
      await e.ok('agent', 'start');
      const s = await e.json<Status>('status');
      assert.strictEqual(s.views[0].state, 'mounted');
      assert.strictEqual(viewServerOf(e.mnt), server);
      await e.ok('deactivate', 'one');
      assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), BASE_TOOL);
      await e.ok('activate', 'one');
      assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), LAYER_TOOL);
    } finally {
      await e.ok('agent', 'stop', '--keep-views');
      delete e.env.TMPDIR;
    }
  });
});

describe('view server: one that does not answer', function () {
  let e: Env;
  let mnt2: string;
  let server2 = 0;
  before(async () => {
    e = await twoLayerEnv();
    await e.ok('agent', 'stop'); // the next one waits 2 s for an answer, not 30
    e.env.STRATA_VIEWD_TIMEOUT_MS = '2000';
    const base2 = path.join(e.dir, 'base2');
    mnt2 = path.join(e.dir, 'mnt2');
    writeTree(base2, { 'bin/tool': BASE_TOOL });
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    await e.ok('view', 'add', base2, '--at', mnt2);
  });
  after(async () => {
    if (server2 && alive(server2)) process.kill(server2, 'SIGCONT');
    await e.cleanup();
  });

  it('fails the switch, undoes it in every view, and gives the server the current table once it answers', async () => {
    assert.strictEqual(read(path.join(mnt2, 'bin/tool')), BASE_TOOL);
    server2 = viewServerOf(mnt2)!;
    process.kill(server2, 'SIGSTOP');
    const r = await e.cli('activate', 'one');
    assert.strictEqual(r.code, 1, r.stdout);
    assert.match(r.stderr, /E_MOUNT_FAILED: a view did not take the change: .*mnt2: no reply/);
    assert.match(r.stderr, /Nothing was switched/);
    let s = await e.json<Status>('status');
    assert.deepStrictEqual(s.active, []);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(e.home, 'state.json'), 'utf8')).active, []);
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), BASE_TOOL, 'the view that took the switch had it undone');
    assert.match(s.views.find((v) => v.base.endsWith('base2'))!.error ?? '', /does not answer/);
    process.kill(server2, 'SIGCONT');
    await eventually('the second view to answer again', async () => {
      s = await e.json<Status>('status');
      return s.views.every((v) => v.state === 'mounted');
    });
    // It took the switch it was sent, then the undone table again.
    assert.strictEqual(read(path.join(mnt2, 'bin/tool')), BASE_TOOL);
    await e.ok('activate', 'one');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), LAYER_TOOL);
    assert.strictEqual(read(path.join(mnt2, 'bin/tool')), LAYER_TOOL);
  });
});
