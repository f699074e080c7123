/**
 * The agent end to end on real FUSE mounts, driven through the real CLI: redirect and
 * pass-through, live switches seen by running processes, in-place views, copy-up and reset,
 * excludes, delete entries, priority, swap, export/import, restart and kill -9 of the agent (the
 * view keeps serving) and of the view's server (its stale mount is recovered).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Env, mounted, sh } from './helpers';
import { Shell, alive, mountCount, read, twoLayerEnv, viewServerOf, viewWithOneActive, waitFor } from './view-helpers';

interface LayerJson {
  name: string;
  active: boolean;
  mappings: { original: string; destination: string }[];
}

describe('view: redirect, pass-through and live switch', function () {
  let e: Env;
  let shell: Shell | undefined;
  before(async () => {
    e = await twoLayerEnv();
    await e.ok('view', 'add', e.base, '--at', e.mnt);
  });
  after(async () => {
    shell?.close();
    await e.cleanup();
  });

  it('passes through to the base while no layer is active', async () => {
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho base\n');
    assert.deepStrictEqual(fs.readdirSync(path.join(e.mnt, 'bin')).sort(), ['only-base', 'tool']);
  });

  it('redirects mapped paths once a layer is activated, merging directory listings', async () => {
    await e.ok('activate', 'one');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
    assert.deepStrictEqual(fs.readdirSync(path.join(e.mnt, 'bin')).sort(), ['extra', 'only-base', 'tool']);
    assert.strictEqual(read(path.join(e.mnt, 'README')), 'base readme\n');
    assert.strictEqual(fs.statSync(path.join(e.mnt, 'bin/tool')).size, '#!/bin/sh\necho layer-one-longer-output\n'.length);
  });

  it('shows a switch at once to a running shell whose cwd is inside the view', async () => {
    shell = new Shell(path.join(e.mnt, 'bin'));
    assert.strictEqual(await shell.run('./tool'), 'layer-one-longer-output');
    await e.ok('deactivate', 'one');
    // Same shell, same cwd, no reload: exec sees the base script, not a cut or cached layer file.
    assert.strictEqual(await shell.run('./tool'), 'base');
    assert.strictEqual(await shell.run('cat extra 2>&1 || echo missing'), 'cat: extra: No such file or directory\nmissing');
    await e.ok('activate', 'one');
    assert.strictEqual(await shell.run('./tool'), 'layer-one-longer-output');
    assert.strictEqual(await shell.run('stat -c %s tool'), String('#!/bin/sh\necho layer-one-longer-output\n'.length));
    await e.ok('deactivate', 'one');
    assert.strictEqual(await shell.run('./tool; ls'), 'base\nonly-base\ntool');
  });

  it('lets the higher priority layer win, and the lower one show through elsewhere', async () => {
    await e.ok('activate', 'two', 'one');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
    assert.strictEqual(read(path.join(e.mnt, 'share/doc')), 'two doc\n');
    await e.ok('deactivate', 'one');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho two\n');
    await e.ok('deactivate', 'two');
    assert.strictEqual(fs.existsSync(path.join(e.mnt, 'share')), false);
  });

  it('swaps two layers in one step', async () => {
    await e.ok('activate', 'two');
    const r = await e.json<{ active: string[] }>('swap', 'two', 'one');
    assert.deepStrictEqual(r.active, ['one']);
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
    assert.strictEqual(fs.existsSync(path.join(e.mnt, 'share/doc')), false);
    await e.ok('deactivate', 'one');
  });

  it('keeps excluded paths on the base and hides delete entries', async () => {
    await e.ok('layer', 'exclude', 'one', '/bin/tool');
    await e.ok('layer', 'hide', 'one', '/README');
    await e.ok('activate', 'one');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho base\n');
    assert.strictEqual(read(path.join(e.mnt, 'bin/extra')), 'one\n');
    assert.strictEqual(fs.existsSync(path.join(e.mnt, 'README')), false);
    assert.ok(!fs.readdirSync(e.mnt).includes('README'));
    assert.strictEqual(read(path.join(e.base, 'README')), 'base readme\n');
    await e.ok('deactivate', 'one');
    assert.strictEqual(read(path.join(e.mnt, 'README')), 'base readme\n');
  });

  it('maps a single file to a destination inside the layer', async () => {
    await e.ok('layer', 'map', 'two', '/README', 'share/doc');
    await e.ok('activate', 'two');
    assert.strictEqual(read(path.join(e.mnt, 'README')), 'two doc\n');
    await e.ok('layer', 'unmap', 'two', '/README');
    assert.strictEqual(read(path.join(e.mnt, 'README')), 'base readme\n');
    await e.ok('deactivate', 'two');
  });
});

describe('view: writes, copy-up and reset', function () {
  let e: Env;
  before(async () => {
    e = await viewWithOneActive();
  });
  after(async () => e.cleanup());

  it('copies a layer file up on first write and never touches the layer files or the base', async () => {
    fs.appendFileSync(path.join(e.mnt, 'bin/tool'), 'echo appended\n');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\necho appended\n');
    assert.strictEqual(read(path.join(e.home, 'layers/one/files/bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
    assert.strictEqual(
      read(path.join(e.home, 'layers/one/writable/files/bin/tool')),
      '#!/bin/sh\necho layer-one-longer-output\necho appended\n',
    );
    assert.strictEqual(read(path.join(e.base, 'bin/tool')), '#!/bin/sh\necho base\n');
  });

  it('copies base files up too when they sit under a mapping', async () => {
    fs.writeFileSync(path.join(e.mnt, 'bin/only-base'), 'changed\n');
    assert.strictEqual(read(path.join(e.base, 'bin/only-base')), 'base-only\n');
    assert.strictEqual(read(path.join(e.mnt, 'bin/only-base')), 'changed\n');
  });

  it('records deletions as whiteouts and new files in the writable sublayer', async () => {
    fs.unlinkSync(path.join(e.mnt, 'bin/extra'));
    fs.writeFileSync(path.join(e.mnt, 'bin/new'), 'new\n');
    fs.mkdirSync(path.join(e.mnt, 'bin/sub'));
    fs.renameSync(path.join(e.mnt, 'bin/new'), path.join(e.mnt, 'bin/sub/moved'));
    assert.deepStrictEqual(fs.readdirSync(path.join(e.mnt, 'bin')).sort(), ['only-base', 'sub', 'tool']);
    assert.strictEqual(read(path.join(e.mnt, 'bin/sub/moved')), 'new\n');
    assert.ok(fs.existsSync(path.join(e.home, 'layers/one/files/bin/extra')), 'the read-only file stays');
  });

  it('makes everything written vanish on reset', async () => {
    const listed = async () =>
      (await e.json<{ name: string; writableBytes: number }[]>('layer', 'list')).find((l) => l.name === 'one')!.writableBytes;
    const before = await e.json<{ writableBytes: number }>('layer', 'show', 'one');
    assert.ok(before.writableBytes > 0);
    assert.strictEqual(await listed(), before.writableBytes);
    await e.ok('layer', 'reset', 'one');
    assert.strictEqual(await listed(), 0, 'a list right after a reset (sizes in lists may be 10 s old) shows it');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
    assert.strictEqual(read(path.join(e.mnt, 'bin/only-base')), 'base-only\n');
    assert.deepStrictEqual(fs.readdirSync(path.join(e.mnt, 'bin')).sort(), ['extra', 'only-base', 'tool']);
  });

  it('counts what was written under a name that is not UTF-8, and status and layer show keep working', async () => {
    const before = (await e.json<{ writableBytes: number }>('layer', 'show', 'one')).writableBytes;
    const name = Buffer.concat([Buffer.from(path.join(e.mnt, 'bin') + '/'), Buffer.from([0xff, 0x2e, 0x62, 0x69, 0x6e])]);
    fs.writeFileSync(name, 'seven b');
    assert.strictEqual((await e.json<{ writableBytes: number }>('layer', 'show', 'one')).writableBytes, before + 7);
    await e.ok('status');
    fs.rmSync(name);
  });

  it('writes outside any mapping go to the base', async () => {
    await e.ok('layer', 'unmap', 'one', '/');
    await e.ok('layer', 'map', 'one', '/bin', 'bin');
    fs.writeFileSync(path.join(e.mnt, 'notes.txt'), 'hello\n');
    assert.strictEqual(read(path.join(e.base, 'notes.txt')), 'hello\n');
  });

  it('refuses to deactivate while a process holds a layer file open, naming it, unless forced', async () => {
    const holder = spawn('sh', ['-c', `exec 3< ${path.join(e.mnt, 'bin/extra')}; echo ready; sleep 30`]);
    await new Promise<void>((res) => holder.stdout.once('data', () => res()));
    try {
      const r = await e.cli('deactivate', 'one');
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /E_LAYER_BUSY/);
      assert.match(r.stderr, new RegExp(`pid ${holder.pid} \\(sh\\)`));
      assert.match(r.stderr, /--force/);
      await e.ok('deactivate', 'one', '--force');
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('view: in place over the base', function () {
  let e: Env;
  before(async () => {
    e = await twoLayerEnv();
  });
  after(async () => e.cleanup());

  it('intercepts the original path and still reaches the shadowed base', async () => {
    await e.ok('view', 'add', e.base);
    assert.ok(mounted(e.base));
    assert.strictEqual(read(path.join(e.base, 'bin/tool')), '#!/bin/sh\necho base\n');
    await e.ok('activate', 'one');
    assert.strictEqual((await sh(path.join(e.base, 'bin/tool'))).stdout, 'layer-one-longer-output\n');
    fs.writeFileSync(path.join(e.base, 'written-to-layer'), 'L');
    await e.ok('deactivate', 'one');
    assert.strictEqual((await sh(path.join(e.base, 'bin/tool'))).stdout, 'base\n');
    assert.strictEqual(fs.existsSync(path.join(e.base, 'written-to-layer')), false);
    // With nothing active, writes pass through to the shadowed base itself.
    fs.writeFileSync(path.join(e.base, 'created-through-view'), 'x');
    await e.ok('view', 'rm', e.base);
    assert.ok(!mounted(e.base));
    assert.strictEqual(read(path.join(e.base, 'bin/tool')), '#!/bin/sh\necho base\n');
    assert.strictEqual(read(path.join(e.base, 'created-through-view')), 'x');
    assert.strictEqual(read(path.join(e.home, 'layers/one/writable/files/written-to-layer')), 'L');
  });
});

describe('agent: restart, stale mounts, export and import', function () {
  let e: Env;
  before(async () => {
    e = await viewWithOneActive();
  });
  after(async () => e.cleanup());

  it('restores the active set and views after a clean restart', async () => {
    await e.ok('agent', 'stop');
    assert.ok(!mounted(e.mnt));
    await e.ok('agent', 'start');
    const s = await e.json<{ active: string[]; views: { state: string }[] }>('status');
    assert.deepStrictEqual(s.active, ['one']);
    assert.strictEqual(s.views[0].state, 'mounted');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
  });

  it('recovers the stale mount left when the agent and the view server are killed together', async () => {
    const { pid } = await e.json<{ pid: number }>('status');
    const server = viewServerOf(e.mnt)!;
    // The agent first: a live agent would start a new server at once.
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid), 'the agent to die');
    process.kill(server, 'SIGKILL');
    await waitFor(() => !alive(server), 'the server to die');
    assert.ok(mounted(e.mnt), 'the dead server left its mount behind');
    // ENOTCONN, or ECONNABORTED when the kernel saw the connection aborted (the server's fds closed at its death).
    assert.throws(() => fs.statSync(path.join(e.mnt, 'bin')), /ENOTCONN|ECONNABORTED/);
    await e.ok('agent', 'start');
    const s = await e.json<{ pid: number; views: { state: string }[] }>('status');
    assert.notStrictEqual(s.pid, pid);
    assert.strictEqual(s.views[0].state, 'mounted');
    assert.strictEqual(read(path.join(e.mnt, 'bin/tool')), '#!/bin/sh\necho layer-one-longer-output\n');
    assert.strictEqual(mountCount(e.mnt), 1);
  });

  it('round-trips a layer through export and import', async () => {
    const file = path.join(e.dir, 'two.tar.gz');
    const ex = await e.json<{ sha256: string; bytes: number }>('layer', 'export', 'two', file);
    assert.match(ex.sha256, /^[0-9a-f]{64}$/);
    await e.ok('layer', 'rm', 'two');
    assert.strictEqual((await e.cli('layer', 'show', 'two')).code, 1);
    const imported = await e.json<LayerJson>('layer', 'import', file);
    assert.strictEqual(imported.name, 'two');
    assert.strictEqual(read(path.join(e.home, 'layers/two/files/share/doc')), 'two doc\n');
    await e.ok('swap', 'one', 'two');
    assert.strictEqual(read(path.join(e.mnt, 'share/doc')), 'two doc\n');
  });
});
