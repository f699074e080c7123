/**
 * The agent works for an ordinary user too: mounting through the setuid fusermount3, with the
 * socket and store in that user's own places.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { ROOT, isRoot, writeTree } from './helpers';

const USER = 'strata-test';

describe('non-root: an ordinary user runs the agent and a view', function () {
  let dir: string;
  let uid: number;
  const as = (cmd: string): { code: number; out: string } => {
    const r = spawnSync('runuser', ['-u', USER, '--', 'sh', '-c', cmd], {
      env: { PATH: process.env.PATH, HOME: dir, STRATA_HOME: path.join(dir, 'home') },
      encoding: 'utf8',
      timeout: 60000,
    });
    return { code: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
  };
  const cli = (args: string): { code: number; out: string } => as(`${process.execPath} ${path.join(dir, 'dist/cli.js')} ${args}`);

  before(function () {
    if (!isRoot()) {
      // Already an ordinary user: the other integration suites exercise exactly this path.
      this.skip();
    }
    if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', USER]);
    uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-nonroot-'));
    // A copy of the built agent that the user can read wherever the checkout lives.
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.mkdirSync(path.join(dir, 'build/Release'), { recursive: true });
    for (const f of ['cli.js', 'agent.js']) fs.copyFileSync(path.join(ROOT, 'dist', f), path.join(dir, 'dist', f));
    fs.copyFileSync(path.join(ROOT, 'build/Release/strata-viewd'), path.join(dir, 'build/Release/strata-viewd'));
    fs.chmodSync(path.join(dir, 'build/Release/strata-viewd'), 0o755);
    writeTree(path.join(dir, 'base'), { 'bin/tool': 'base\n' });
    writeTree(path.join(dir, 'src'), { 'bin/tool': 'layer\n' });
    execFileSync('chown', ['-R', `${uid}:${uid}`, dir]);
    fs.chmodSync(dir, 0o755);
  });

  after(function () {
    if (!dir) return;
    cli('agent stop');
    spawnSync('umount', ['-l', path.join(dir, 'mnt')], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('mounts with fusermount3, redirects on activate, outlives a killed agent and unmounts on stop', function () {
    assert.strictEqual(as('id -u').out.trim(), String(uid));
    let r = cli(`layer create tool --from ${dir}/src`);
    assert.strictEqual(r.code, 0, r.out);
    r = cli(`view add ${dir}/base --at ${dir}/mnt`);
    assert.strictEqual(r.code, 0, r.out);
    const line = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === path.join(dir, 'mnt'));
    assert.ok(line && / - fuse\.strata /.test(line), `expected a fuse.strata mount, got ${line}`);
    assert.match(line!, new RegExp(`user_id=${uid}`));
    assert.strictEqual(as(`cat ${dir}/mnt/bin/tool`).out, 'base\n');
    assert.strictEqual(cli('activate tool').code, 0);
    assert.strictEqual(as(`cat ${dir}/mnt/bin/tool`).out, 'layer\n');
    const sock = as(`stat -c '%a %U' /tmp/strata-${uid}-*/agent.sock`).out.trim();
    assert.strictEqual(sock, `600 ${USER}`);
    const views = as(`d=$(dirname /tmp/strata-${uid}-*/agent.sock); stat -c '%a %U' $d/views $d/views/*.sock`).out.trim();
    assert.strictEqual(views, `700 ${USER}\n600 ${USER}`, "the view server's socket is the user's own");
    // The view outlives the user's agent, and the next one takes its server over.
    const pid = Number(JSON.parse(cli('status --json').out).pid);
    process.kill(pid, 'SIGKILL');
    assert.strictEqual(as(`cat ${dir}/mnt/bin/tool`).out, 'layer\n');
    assert.strictEqual(cli('deactivate tool').code, 0);
    assert.strictEqual(as(`cat ${dir}/mnt/bin/tool`).out, 'base\n');
    assert.strictEqual(cli('agent stop').code, 0);
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(dir, 'mnt')));
  });
});
