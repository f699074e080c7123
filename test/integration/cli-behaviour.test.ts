/**
 * The CLI as a well-kept CLI: --version, "did you mean", read-only commands that never start the
 * agent (exit status 3 when it is stopped), a command that starts it says so, busy refusals that
 * name each process once, swap --force, and deactivating a layer that is not active.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Env, makeEnv, writeTree } from './helpers';
import { socketPath } from '../../shared/paths';

const agentStarted = (e: Env) => fs.existsSync(path.join(e.home, 'agent.log')) || fs.existsSync(socketPath(e.home));

describe('cli: version, suggestions, and commands that never start the agent', function () {
  let e: Env;
  before(() => {
    e = makeEnv('strata-cliux-');
  });
  after(async () => e.cleanup());

  it('prints its version', async () => {
    const r = await e.cli('--version');
    assert.strictEqual(r.code, 0, r.stderr);
    const { version } = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));
    assert.strictEqual(r.stdout, `strata ${version}\n`);
  });

  it('suggests the command meant by a typo, and starts nothing', async () => {
    const r = await e.cli('lyer', 'list');
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /unknown command "lyer"; did you mean "layer"\?/);
    const sub = await e.cli('layer', 'lsit');
    assert.strictEqual(sub.code, 2, sub.stderr);
    assert.match(sub.stderr, /did you mean "layer list"\?/);
    const opt = await e.cli('deactivate', 'x', '--froce');
    assert.strictEqual(opt.code, 2, opt.stderr);
    assert.match(opt.stderr, /unknown option --froce; did you mean --force\?/);
    assert.ok(!agentStarted(e), 'a typo started an agent');
  });

  it('reports a stopped agent as stopped, with exit status 3, from every read-only command', async () => {
    const st = await e.cli('status');
    assert.strictEqual(st.code, 3, st.stderr);
    assert.match(st.stdout, /^agent stopped \(home .*\)/);
    const js = await e.cli('status', '--json');
    assert.strictEqual(js.code, 3, js.stderr);
    assert.deepStrictEqual(JSON.parse(js.stdout), { running: false, home: e.home });
    for (const args of [
      ['layer', 'list'],
      ['layer', 'show', 'x'],
      ['view', 'list'],
      ['team', 'status'],
      ['team', 'history'],
    ]) {
      const r = await e.cli(...args);
      assert.strictEqual(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^strata: E_AGENT_UNAVAILABLE: the agent for .* is not running$/m, args.join(' '));
    }
    assert.ok(!agentStarted(e), 'a read-only command started the agent');
  });

  it('says on stderr when a command starts the agent, and only then', async () => {
    writeTree(path.join(e.dir, 'src'), { 'bin/tool': 'x\n' });
    const r = await e.cli('layer', 'create', 'one', '--from', path.join(e.dir, 'src'));
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /^strata: starting the agent for .* \(log: .*agent\.log\)$/m);
    const again = await e.cli('layer', 'list');
    assert.strictEqual(again.code, 0, again.stderr);
    assert.strictEqual(again.stderr, '');
    const more = await e.cli('activate', 'one');
    assert.ok(!/starting the agent/.test(more.stderr), more.stderr);
  });
});

describe('cli: switching refusals', function () {
  let e: Env;
  before(async () => {
    e = makeEnv('strata-cliux-');
    writeTree(e.base, { 'bin/a': 'base a\n', 'bin/b': 'base b\n' });
    writeTree(path.join(e.dir, 'one'), { 'bin/a': 'one a\n', 'bin/b': 'one b\n' });
    writeTree(path.join(e.dir, 'two'), { 'bin/a': 'two a\n', 'bin/b': 'two b\n' });
    await e.ok('layer', 'create', 'one', '--from', path.join(e.dir, 'one'));
    await e.ok('layer', 'create', 'two', '--from', path.join(e.dir, 'two'));
    await e.ok('view', 'add', e.base, '--at', e.mnt);
  });
  after(async () => e.cleanup());

  it('says so when deactivating a layer that is not active, and changes nothing', async () => {
    await e.ok('activate', 'one');
    const r = await e.cli('deactivate', 'two');
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /^strata: E_LAYER_INACTIVE: layer "two" is not active$/m);
    const both = await e.cli('deactivate', 'one', 'two');
    assert.strictEqual(both.code, 1, both.stderr);
    assert.match(both.stderr, /E_LAYER_INACTIVE/);
    assert.deepStrictEqual((await e.json<{ active: string[] }>('status')).active, ['one'], 'nothing was switched');
    const unknown = await e.cli('deactivate', 'nosuch');
    assert.match(unknown.stderr, /E_LAYER_UNKNOWN/);
  });

  it('names a busy process once, however many files it holds; swap --force switches anyway', async () => {
    // One process holding two files of the layer open.
    const holder = spawn('sh', ['-c', `exec 3< ${path.join(e.mnt, 'bin/a')} 4< ${path.join(e.mnt, 'bin/b')}; echo ready; sleep 30`]);
    await new Promise<void>((res) => holder.stdout.once('data', () => res()));
    try {
      for (const args of [
        ['deactivate', 'one'],
        ['swap', 'one', 'two'],
      ]) {
        const r = await e.cli(...args);
        assert.strictEqual(r.code, 1, r.stderr);
        assert.match(r.stderr, /E_LAYER_BUSY/);
        const named = r.stderr.match(new RegExp(`pid ${holder.pid}\\b`, 'g')) ?? [];
        assert.strictEqual(named.length, 1, `pid ${holder.pid} named once:\n${r.stderr}`);
        assert.match(r.stderr, new RegExp(`pid ${holder.pid} \\(sh\\) has 2 files open`));
      }
      await e.ok('swap', 'one', 'two', '--force');
      assert.deepStrictEqual((await e.json<{ active: string[] }>('status')).active, ['two']);
      assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'bin/a'), 'utf8'), 'two a\n');
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('cli: two active layers of equal priority on one path', function () {
  let e: Env;
  before(async () => {
    e = makeEnv('strata-cliux-');
    writeTree(e.base, { 'tools/bin/tool': 'base\n' });
    for (const n of ['tool-b', 'tool-a', 'tool-c']) writeTree(path.join(e.dir, n), { 'bin/tool': `${n}\n`, [`bin/only-${n}`]: `${n}\n` });
    await e.ok('layer', 'create', 'tool-b', '--from', path.join(e.dir, 'tool-b'), '--map', '/tools=/');
    await e.ok('layer', 'create', 'tool-a', '--from', path.join(e.dir, 'tool-a'), '--map', '/tools=/');
    await e.ok('layer', 'create', 'tool-c', '--from', path.join(e.dir, 'tool-c'), '--map', '/tools=/', '--priority', '200');
    await e.ok('view', 'add', e.base, '--at', e.mnt);
  });
  after(async () => e.cleanup());

  it('warns on activate, says which wins in status and layer show, and the view agrees', async () => {
    await e.ok('activate', 'tool-b');
    const r = await e.cli('activate', 'tool-a');
    assert.strictEqual(r.code, 0, r.stderr);
    const tie = 'at /tools: tool-a wins over tool-b (both priority 100: a tie goes to the name sorted first)';
    assert.ok(r.stderr.includes(`strata: warning: ${tie}`), r.stderr);
    assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'tools/bin/tool'), 'utf8'), 'tool-a\n', 'the view serves the one named');
    assert.ok((await e.ok('status')).includes(`overlaps of equal priority:\n  ${tie}`));
    const st = await e.json<{ running: boolean; overlaps: { path: string; winner: string; losers: string[] }[] }>('status');
    assert.strictEqual(st.running, true);
    assert.deepStrictEqual(st.overlaps, [{ path: '/tools', priority: 100, winner: 'tool-a', losers: ['tool-b'] }]);
    assert.ok((await e.ok('layer', 'show', 'tool-b')).includes(`  overlaps of equal priority:\n    ${tie}`));
  });

  it('says nothing when priorities differ', async () => {
    await e.ok('deactivate', 'tool-a');
    const r = await e.cli('activate', 'tool-c');
    assert.strictEqual(r.code, 0, r.stderr);
    assert.ok(!/warning/.test(r.stderr), r.stderr);
    assert.ok(!(await e.ok('status')).includes('overlaps'));
    assert.strictEqual(fs.readFileSync(path.join(e.mnt, 'tools/bin/tool'), 'utf8'), 'tool-c\n');
  });
});
