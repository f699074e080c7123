/**
 * Issue 9 item 10: a killed agent leaves staging folders in the store (`.create-*`, `.import-*`)
 * and the cp or tar that was filling one keeps running. The next agent stops those and removes
 * the folders before it serves anything. (Copy-ups leave nothing: strata-viewd makes each under
 * an O_TMPFILE; see docs/view-core.md.)
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Env, makeEnv, writeTree } from './helpers';

/** A process of its own whose command line names `dir`, as cp's and tar's do. */
const idle = (dir: string) => spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', dir], { detached: true, stdio: 'ignore' });
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('agent start: what a killed agent left', function () {
  this.timeout(120_000);
  let e: Env;
  before(() => (e = makeEnv('strata-leftovers-')));
  after(async () => e.cleanup());

  it('stops the orphaned copy filling a staging folder and removes the .create-* and .import-* folders', async () => {
    writeTree(path.join(e.home, '..', 'src'), { 'bin/tool': 'tool\n' });
    await e.ok('layer', 'create', 'kept', '--from', path.join(e.home, '..', 'src'));
    await e.ok('agent', 'stop');
    const layers = path.join(e.home, 'layers');
    const create = path.join(layers, '.create-Ab12Cd');
    const imp = path.join(layers, '.import-Ef34Gh');
    writeTree(path.join(create, 'files'), { 'half/copied': 'x'.repeat(1 << 16) });
    fs.mkdirSync(path.join(imp, 'files'), { recursive: true });
    // What a killed agent's `cp -a SRC/. .create-*/files` looks like once orphaned: a process of its own naming the folder.
    const orphan = idle(path.join(create, 'files'));
    orphan.unref();
    const bystander = idle(path.join(layers, 'kept', 'files'));
    bystander.unref();
    try {
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(alive(orphan.pid!) && alive(bystander.pid!));
      await e.ok('agent', 'start');
      assert.ok(!fs.existsSync(create) && !fs.existsSync(imp), `left: ${fs.readdirSync(layers)}`);
      assert.deepStrictEqual(fs.readdirSync(layers), ['kept']);
      const deadline = Date.now() + 10_000;
      while (alive(orphan.pid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(!alive(orphan.pid!), 'the orphaned copy was stopped');
      assert.ok(alive(bystander.pid!), 'a process using a real layer was left alone');
      const log = fs.readFileSync(path.join(e.home, 'agent.log'), 'utf8');
      assert.match(log, new RegExp(`stopped pid ${orphan.pid}, left filling a staging folder`));
      assert.match(log, /removed 2 staging folder\(s\) left by an agent that was killed: .*\.create-Ab12Cd/);
      await e.ok('layer', 'show', 'kept');
    } finally {
      for (const p of [orphan, bystander]) if (alive(p.pid!)) process.kill(p.pid!, 'SIGKILL');
    }
  });
});
