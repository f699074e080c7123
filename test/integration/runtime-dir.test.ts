/**
 * Local trust: with no XDG_RUNTIME_DIR the socket lives in /tmp/strata-UID-…/, a name anyone can
 * take first. Another user who made that folder and serves a fake agent in it must not see a
 * single request; the client and the agent both refuse the folder and say what to do. The files
 * in STRATA_HOME are private.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { execFile, execFileSync, spawn, spawnSync } from 'child_process';
import { CLI, Env, ROOT, isRoot, makeEnv, writeTree } from './helpers';
import { runtimeDir } from '../../shared/paths';
import { eventually } from '../wait';

const USER = 'strata-test';

/** A stand-in agent: answers status with active FAKE and records every connection and line. */
const FAKE_AGENT = `
const fs = require('fs'), net = require('net');
const [dir, record, pidFile] = process.argv.slice(2);
fs.writeFileSync(pidFile, String(process.pid));
fs.mkdirSync(dir, { mode: 0o755 });
fs.chmodSync(dir, 0o755);
const server = net.createServer((s) => {
  fs.appendFileSync(record, 'connect\\n');
  s.setEncoding('utf8');
  s.on('data', (d) => {
    fs.appendFileSync(record, d);
    for (const line of d.split('\\n').filter(Boolean)) {
      const id = JSON.parse(line).id;
      s.write(JSON.stringify({ id, ok: true, result: { protocol: 1, pid: 1, home: '/', socket: '/', active: ['FAKE'], layers: [], views: [] } }) + '\\n');
    }
  });
});
server.listen(dir + '/agent.sock', () => {
  fs.chmodSync(dir + '/agent.sock', 0o777);
  fs.appendFileSync(record, 'listening\\n');
});
`;

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, args, { env, timeout: 60000 }, (err, stdout, stderr) =>
      res({ code: err ? Number((err as unknown as { code: number }).code) || 1 : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

describe('local trust: the runtime folder and the files in STRATA_HOME', function () {
  let e: Env;
  let env: NodeJS.ProcessEnv;
  let rdir: string;
  let uid: number;
  let record: string;
  let fakePid: number | undefined;

  const stopFake = () => {
    if (fakePid) spawnSync('kill', [String(fakePid)]);
    fakePid = undefined;
    fs.rmSync(rdir, { recursive: true, force: true });
  };

  before(async function () {
    if (!isRoot()) this.skip();
    if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/sh', USER]);
    uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
    e = makeEnv();
    // Root's usual environment in a service or over sudo: no XDG_RUNTIME_DIR, /tmp as TMPDIR.
    env = { ...e.env };
    delete env.XDG_RUNTIME_DIR;
    delete env.TMPDIR;
    rdir = runtimeDir(e.home, env);
    assert.match(rdir, /^\/tmp\/strata-0-/);
    fs.rmSync(rdir, { recursive: true, force: true });
    record = path.join(e.dir, 'fake.log');
    fs.writeFileSync(path.join(e.dir, 'fake.js'), FAKE_AGENT);
    fs.writeFileSync(record, '');
    fs.chmodSync(record, 0o666);
    writeTree(path.join(e.dir, 'src'), { 'bin/tool': 'layer\n' });
  });

  after(async function () {
    if (!e) return;
    await run([CLI, 'agent', 'stop'], env);
    stopFake();
    await e.cleanup();
  });

  it("refuses another user's runtime folder in the client: strata status and activate are not captured", async () => {
    const pidFile = path.join(e.dir, 'fake.pid');
    fs.writeFileSync(pidFile, '', { mode: 0o666 });
    fs.chmodSync(pidFile, 0o666);
    spawn('runuser', ['-u', USER, '--', process.execPath, path.join(e.dir, 'fake.js'), rdir, record, pidFile], { stdio: 'ignore' });
    await eventually('the fake agent listening', () => fs.readFileSync(record, 'utf8').includes('listening'));
    fakePid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.strictEqual(fs.statSync(rdir).uid, uid, 'the other user made the folder');

    for (const args of [['status'], ['activate', 'anything']]) {
      const r = await run([CLI, ...args], env);
      assert.strictEqual(r.code, 1, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /FAKE/);
      assert.match(
        r.stderr,
        new RegExp(`E_AGENT_UNAVAILABLE: the agent's runtime folder ${rdir} belongs to uid ${uid}, not to you \\(uid 0\\)`),
      );
      assert.match(r.stderr, /refusing to use it/);
      assert.match(r.stderr, /XDG_RUNTIME_DIR/);
    }
    assert.strictEqual(fs.readFileSync(record, 'utf8'), 'listening\n', 'the fake agent saw no connection');
  });

  it("refuses another user's runtime folder in the agent too, naming it", async () => {
    const r = await run([path.join(ROOT, 'dist', 'agent.js')], env);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, new RegExp(`failed to start: the agent's runtime folder ${rdir} belongs to uid ${uid}`));
    assert.match(r.stderr, /XDG_RUNTIME_DIR/);
    assert.strictEqual(fs.readFileSync(record, 'utf8'), 'listening\n');
    stopFake();
  });

  it('refuses a runtime folder of ours that others can write, and a symlink', async () => {
    fs.mkdirSync(rdir, { mode: 0o755 });
    fs.chmodSync(rdir, 0o755);
    let r = await run([CLI, 'status'], env);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, new RegExp(`${rdir} has mode 0755, not 0700`));
    assert.match(r.stderr, new RegExp(`chmod 700 ${rdir}`));
    fs.rmdirSync(rdir);

    fs.symlinkSync(e.dir, rdir);
    r = await run([CLI, 'status'], env);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, new RegExp(`${rdir} is a symbolic link; refusing to use it`));
    fs.unlinkSync(rdir);
  });

  it('creates the folder 0700 itself and keeps STRATA_HOME private', async () => {
    // As an older Strata left it: home and state readable by everyone, a temp file of a killed agent.
    fs.mkdirSync(e.home, { recursive: true });
    fs.chmodSync(e.home, 0o755);
    fs.writeFileSync(path.join(e.home, 'state.json'), '{"format":1,"active":[],"views":[]}\n', { mode: 0o644 });
    fs.writeFileSync(path.join(e.home, 'agent.log'), '', { mode: 0o644 });
    let r = await run([CLI, 'layer', 'create', 'tool', '--from', path.join(e.dir, 'src')], env);
    assert.strictEqual(r.code, 0, r.stderr);
    r = await run([CLI, 'activate', 'tool'], env);
    assert.strictEqual(r.code, 0, r.stderr);
    const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
    assert.strictEqual(mode(rdir), '700');
    assert.strictEqual(mode(path.join(rdir, 'agent.sock')), '600');
    assert.strictEqual(mode(e.home), '700');
    assert.strictEqual(mode(path.join(e.home, 'layers')), '700');
    for (const f of ['state.json', 'agent.log', 'agent.json', 'layers/tool/layer.json'])
      assert.strictEqual(mode(path.join(e.home, f)), '600', f);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(e.home, 'state.json'), 'utf8')).active, ['tool']);
  });
});
