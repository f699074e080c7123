/**
 * strata-viewd on its own: start-up, the control protocol, and the ways it ends (unmount request,
 * SIGTERM, unmounted from outside); it outlives the process that started it.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn, spawnSync } from 'child_process';
import { isRoot, writeTree } from './helpers';
import { VIEWD, Viewd, detach, exited, layerDirs, lookupsToStat, mounted, rule, startViewd, table, viewdArgs } from './viewd-helpers';
import { ViewdControl, ViewdError } from '../../daemon/fuse/viewdctl';
import { eventually } from '../wait';

function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('viewd: start-up and control', function () {
  let dir: string;
  let base: string;
  let mnt: string;
  let sock: string;
  let v: Viewd | null = null;

  before(function () {
    if (!fs.existsSync(VIEWD)) throw new Error(`${VIEWD} is missing: run npx node-gyp rebuild`);
  });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-viewd-'));
    base = path.join(dir, 'base');
    mnt = path.join(dir, 'mnt');
    sock = path.join(dir, 'ctl.sock');
    fs.mkdirSync(mnt);
    writeTree(base, { 'a.txt': 'base a\n', 'bin/tool': 'base tool\n' });
  });

  afterEach(async function () {
    if (v) await v.stop();
    v = null;
    detach(mnt);
    detach(base);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('mounts the base, answers hello and stats, and unmounts on request', async function () {
    v = await startViewd({ mnt, base, sock });
    assert.ok(mounted(mnt));
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'a.txt'), 'utf8'), 'base a\n');
    const h = await v.ctl.hello();
    assert.deepStrictEqual(h, { pid: v.pid, mountpoint: mnt, generation: 0 });
    const st = await v.ctl.stats();
    assert.ok(st.nodes >= 1 && st.lookups >= 1, JSON.stringify(st));
    assert.strictEqual(fs.statSync(sock).mode & 0o777, 0o600);
    await v.ctl.unmount();
    assert.ok(await exited(v.proc), 'the server exits after unmount');
    assert.strictEqual(v.proc.exitCode, 0);
    assert.ok(!mounted(mnt));
    assert.ok(!fs.existsSync(sock), 'the socket is removed');
    v = null;
  });

  it('warm lists the mount so the kernel holds every name: stats then send no LOOKUP; a bound stops it', async function () {
    const tree: Record<string, string> = {};
    for (let d = 0; d < 12; d++) for (let f = 0; f < 8; f++) tree[`d${d % 3}/e${d}/f${f}.js`] = 'x';
    writeTree(base, tree);
    const files = Object.keys(tree).map((p) => path.join(mnt, p));

    // Cold: every file's first stat is a LOOKUP (the counter sees them).
    v = await startViewd({ mnt, base, sock });
    assert.ok((await lookupsToStat(v.ctl, files)) >= files.length, 'a cold mount looks every file up');
    await v.stop();

    v = await startViewd({ mnt, base, sock });
    // Listed: the top (a.txt, bin, d0-d2), bin (tool), d0-d2 (12 folders), those (96 files).
    const w = await v.ctl.warm(100000, 60000);
    assert.deepStrictEqual({ folders: w.folders, names: w.names, partial: w.partial }, { folders: 17, names: 114, partial: false });
    assert.strictEqual(await lookupsToStat(v.ctl, files), 0, 'after warm-up no stat needs a LOOKUP');
    await v.stop();

    v = await startViewd({ mnt, base, sock });
    const part = await v.ctl.warm(4, 60000);
    assert.ok(part.partial && part.folders < 17 && part.names >= 4, JSON.stringify(part));
    await assert.rejects(v.ctl.warm(-1, 5), (e: ViewdError) => e.code === 'E_REQUEST');
  });

  it('installs a table, refuses a malformed one and keeps the old', async function () {
    const layers = path.join(dir, 'layers');
    writeTree(layerDirs(layers, 'tools').files, { 'bin/tool': 'layer tool\n' });
    v = await startViewd({ mnt, base, sock });
    const t1 = table(layers, [rule('tools', { '/bin': 'bin' })], 1);
    assert.strictEqual((await v.ctl.rules(t1)).generation, 1);
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8'), 'layer tool\n');
    for (const bad of [
      'strata-rules 2\ngeneration 2\nend\n',
      'strata-rules 1\ngeneration 2\nmap /a a\nend\n',
      'strata-rules 1\ngeneration 2\n',
      t1.replace('map /bin bin', 'map bin bin'),
    ]) {
      await assert.rejects(v.ctl.rules(bad), (e: ViewdError) => e.code === 'E_RULES', bad);
    }
    assert.strictEqual((await v.ctl.hello()).generation, 1);
    assert.strictEqual(fs.readFileSync(path.join(mnt, 'bin/tool'), 'utf8'), 'layer tool\n');
    await assert.rejects(v.ctl.request('frobnicate'), (e: ViewdError) => e.code === 'E_REQUEST');
    await assert.rejects(v.ctl.resolve('relative'), (e: ViewdError) => e.code === 'E_PATH');
    assert.strictEqual((await v.ctl.hello()).generation, 1, 'the connection still works after errors');
  });

  it('starts with --rules and lists open files', async function () {
    const layers = path.join(dir, 'layers');
    writeTree(layerDirs(layers, 'tools').files, { 'bin/tool': 'layer tool\n' });
    v = await startViewd({ mnt, base, sock, rules: table(layers, [rule('tools', { '/bin': 'bin' })], 5) });
    assert.strictEqual((await v.ctl.hello()).generation, 5);
    const fd = fs.openSync(path.join(mnt, 'bin/tool'), 'r');
    const fd2 = fs.openSync(path.join(mnt, 'a.txt'), 'r');
    try {
      const open = await v.ctl.openFiles();
      const byPath = new Map(open.map((o) => [o.path.toString(), o]));
      assert.strictEqual(open.length, 2, JSON.stringify(open));
      assert.strictEqual(byPath.get('/bin/tool')?.layer, 'tools');
      assert.strictEqual(byPath.get('/a.txt')?.layer, null);
      assert.strictEqual(byPath.get('/a.txt')?.pid, process.pid);
    } finally {
      fs.closeSync(fd);
      fs.closeSync(fd2);
    }
    await eventually('release', async () => (await v!.ctl.openFiles()).length === 0);
  });

  it('mounts in place over the base it opened first', async function () {
    v = await startViewd({ mnt: base, base, sock, inPlace: true });
    assert.ok(mounted(base));
    assert.deepStrictEqual(fs.readdirSync(base).sort(), ['a.txt', 'bin']);
    fs.writeFileSync(path.join(base, 'new.txt'), 'through the view\n');
    await v.stop();
    v = null;
    assert.strictEqual(fs.readFileSync(path.join(base, 'new.txt'), 'utf8'), 'through the view\n');
  });

  it('refuses --allow-other for an ordinary user and --in-place for two folders', function () {
    const r = spawnSync(VIEWD, ['--in-place', mnt, base, sock], { encoding: 'utf8' });
    assert.strictEqual(r.status, 2);
    assert.match(r.stderr, /--in-place/);
    const u = spawnSync(VIEWD, ['--bogus'], { encoding: 'utf8' });
    assert.strictEqual(u.status, 2);
    assert.match(u.stderr, /usage/);
  });

  it('ends cleanly on SIGTERM and when unmounted from outside', async function () {
    v = await startViewd({ mnt, base, sock });
    v.proc.kill('SIGTERM');
    assert.ok(await exited(v.proc));
    assert.ok(!mounted(mnt));
    v = null;
    v = await startViewd({ mnt, base, sock });
    assert.strictEqual(spawnSync('umount', [mnt]).status, 0);
    assert.ok(await exited(v.proc), 'the server ends when its mount goes');
    v = null;
  });

  it('runs as an ordinary user, mounting through fusermount3', async function () {
    if (!isRoot()) this.skip(); // already an ordinary user: every other test here is this case
    const user = 'strata-test';
    if (spawnSync('id', ['-u', user]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', user]);
    const bin = path.join(dir, 'strata-viewd');
    fs.copyFileSync(VIEWD, bin);
    fs.chmodSync(bin, 0o755);
    const run = path.join(dir, 'run');
    fs.mkdirSync(run, { mode: 0o700 });
    execFileSync('chown', ['-R', `${user}:`, base, mnt, run]);
    fs.chmodSync(dir, 0o755);
    sock = path.join(run, 'ctl.sock');
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
    const as = (cmd: string) => spawnSync('runuser', ['-u', user, '--', 'sh', '-c', cmd], { encoding: 'utf8', env, timeout: 30000 });
    const started = as(`${bin} ${mnt} ${base} ${sock} >${run}/out 2>${run}/err & echo $!`);
    const pid = Number(started.stdout.trim());
    await eventually('the mount', () => mounted(mnt) && fs.existsSync(sock));
    const line = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === mnt)!;
    assert.match(line, / - fuse\.strata strata .*default_permissions/);
    const r = as(`cat ${mnt}/a.txt && echo mine > ${mnt}/made`);
    assert.strictEqual(r.stdout, 'base a\n', r.stderr);
    assert.strictEqual(fs.statSync(path.join(base, 'made')).uid, Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })));
    assert.notStrictEqual(as(`${bin} --allow-other ${mnt} ${base} ${sock}.2`).status, 0, '--allow-other is for root');
    const ctl = await ViewdControl.connect(sock);
    try {
      await ctl.unmount();
    } finally {
      ctl.close();
    }
    await eventually('the server to end and its mount to go', () => !alive(pid) && !mounted(mnt));
  });

  it('outlives the process that started it, even its whole process group killed', async function () {
    const parent = spawn(
      'sh',
      [
        '-c',
        `"${VIEWD}" ${viewdArgs({ mnt, base, sock })
          .map((a) => `'${a}'`)
          .join(' ')} >/dev/null 2>&1 & echo $!; wait`,
      ],
      {
        detached: true,
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const pid = await new Promise<number>((res) => parent.stdout!.once('data', (d) => res(Number(String(d).trim()))));
    await eventually('the mount', () => mounted(mnt) && fs.existsSync(sock));
    process.kill(-parent.pid!, 'SIGKILL');
    await exited(parent);
    const ctl = await ViewdControl.connect(sock);
    try {
      assert.strictEqual((await ctl.hello()).pid, pid);
      assert.strictEqual(fs.readFileSync(path.join(mnt, 'a.txt'), 'utf8'), 'base a\n');
      await ctl.unmount();
    } finally {
      ctl.close();
    }
    await eventually('the server to end and its mount to go', () => !alive(pid) && !mounted(mnt));
  });
});
