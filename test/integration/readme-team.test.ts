/**
 * README.md's "Set up a team", run as written: each sh block as the person its first line names
 * (alice, the relay host, bob), in a bash with `strata` being this checkout's CLI, with their own
 * HOME (so ~ and the default STRATA_HOME are theirs) and in their checkout of one git repository.
 * Only the relay's host name and port are replaced; what the text says happens off-screen (the
 * archives in ~/Downloads, the secret copied over a safe channel, bob's clone) the test does.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, execFile, spawn, spawnSync } from 'child_process';
import { CLI, ROOT } from './helpers';
import { eventually } from './team-helpers';
import { TeamStatus } from '../../protocol';

interface Person {
  name: string;
  home: string;
  project: string;
  env: NodeJS.ProcessEnv;
}

/** The sh blocks of the README section `title`, in order. */
function blocks(title: string): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README.md has a "${title}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => res(port));
    });
  });
}

function bash(who: Person, script: string): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    execFile('bash', ['-c', script], { cwd: who.project, env: who.env, timeout: 90000 }, (e, stdout, stderr) =>
      res({ code: e ? ((e as unknown as { code: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const archive = (dir: string, name: string, version: string) => {
  const top = path.join(dir, 'src', name);
  fs.mkdirSync(path.join(top, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(top, 'bin/node'), `#!/bin/sh\necho v${version}\n`, { mode: 0o755 });
  const r = spawnSync('tar', ['-C', path.join(dir, 'src'), '-cJf', path.join(dir, `${name}.tar.xz`), name]);
  assert.strictEqual(r.status, 0, String(r.stderr));
};

describe('README: "Set up a team" works as written', function () {
  this.timeout(240000);
  let dir: string;
  let relay: ChildProcess | null = null;
  const people: Record<string, Person> = {};

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-readme-'));
    fs.chmodSync(dir, 0o755);
    for (const name of ['alice', 'relay', 'bob']) {
      const home = path.join(dir, name);
      const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, STRATA_TEAM_HEARTBEAT_MS: '500' };
      for (const k of ['STRATA_HOME', 'XDG_DATA_HOME', 'XDG_CONFIG_HOME']) delete env[k];
      Object.assign(env, {
        GIT_AUTHOR_NAME: name,
        GIT_AUTHOR_EMAIL: `${name}@example.com`,
        GIT_COMMITTER_NAME: name,
        GIT_COMMITTER_EMAIL: `${name}@example.com`,
      });
      people[name] = { name, home, project: path.join(home, 'project'), env };
      fs.mkdirSync(people[name].project, { recursive: true });
    }
  });

  after(async () => {
    for (const who of [people.alice, people.bob]) {
      await new Promise((res) => execFile(process.execPath, [CLI, 'agent', 'stop'], { env: who.env, timeout: 30000 }, res));
      spawnSync('umount', ['-l', who.project], { stdio: 'ignore' });
    }
    if (relay?.pid) process.kill(-relay.pid, 'SIGTERM');
    if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('takes alice, a relay and bob from nothing to a working team switch', async () => {
    const { alice, bob } = people;
    const host = people.relay;
    const port = await freePort();
    const prelude = `set -euo pipefail\nstrata() { "${process.execPath}" "${CLI}" "$@"; }\n`;
    const asWritten = (block: string) => prelude + block.replaceAll('relay.example.com', '127.0.0.1').replaceAll('7450', String(port));

    // Before the README starts: the project's repository with its own tools/node, and the downloads.
    fs.mkdirSync(path.join(alice.project, 'tools/node/bin'), { recursive: true });
    fs.writeFileSync(path.join(alice.project, 'tools/node/bin/node'), '#!/bin/sh\necho system\n', { mode: 0o755 });
    const init = await bash(alice, 'git init -q && git add -A && git commit -q -m project');
    assert.strictEqual(init.code, 0, init.out);
    archive(path.join(alice.home, 'Downloads'), 'node-v18.20.4-linux-x64', '18.20.4');
    archive(path.join(alice.home, 'Downloads'), 'node-v20.11.0-linux-x64', '20.11.0');

    const steps = blocks('Set up a team');
    assert.deepStrictEqual(
      steps.map((b) => /^# (alice|the relay host|bob)\b/.exec(b)?.[1]),
      ['alice', 'the relay host', 'alice', 'bob', 'alice'],
      'the blocks, and whose they are',
    );
    const secret = (who: Person) => path.join(who.home, '.config/strata/acme.secret');

    // alice: layers, team file, secret
    let r = await bash(alice, asWritten(steps[0]));
    assert.strictEqual(r.code, 0, r.out);
    assert.ok(!r.out.includes(fs.readFileSync(secret(alice), 'utf8').trim()), 'the secret is never printed');
    assert.strictEqual(fs.statSync(secret(alice)).mode & 0o777, 0o600);
    const teamFile = JSON.parse(fs.readFileSync(path.join(alice.project, 'strata.team.json'), 'utf8'));
    assert.match(teamFile.layers.node20.digest, /^sha256:[0-9a-f]{64}$/);
    assert.strictEqual(spawnSync('git', ['-C', alice.project, 'status', '--porcelain']).stdout.toString(), '', 'committed');

    // the relay host, with the secret copied to it
    for (const who of [host, bob]) {
      fs.mkdirSync(path.dirname(secret(who)), { recursive: true });
      fs.copyFileSync(secret(alice), secret(who));
      fs.chmodSync(secret(who), 0o600);
    }
    relay = spawn('bash', ['-c', asWritten(steps[1])], {
      cwd: host.project,
      env: host.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let relayOut = '';
    relay.stdout!.on('data', (d) => (relayOut += String(d)));
    relay.stderr!.on('data', (d) => (relayOut += String(d)));
    await eventually('the relay to listen', () => {
      if (relay!.exitCode !== null) throw new Error(`the relay exited: ${relayOut}`);
      return /listening on ws:\/\//.test(relayOut);
    });

    // alice joins and serves her checkout
    r = await bash(alice, asWritten(steps[2]));
    assert.strictEqual(r.code, 0, r.out);

    // bob: his clone of the repository, then his block
    fs.rmSync(bob.project, { recursive: true, force: true });
    const clone = spawnSync('git', ['clone', '-q', path.join(alice.home, 'project', '.git'), bob.project], { env: bob.env });
    assert.strictEqual(clone.status, 0, String(clone.stderr));
    r = await bash(bob, asWritten(steps[3]));
    assert.strictEqual(r.code, 0, r.out);
    const bobNode = () => fs.readFileSync(path.join(bob.project, 'tools/node/bin/node'), 'utf8');
    assert.strictEqual(bobNode(), '#!/bin/sh\necho system\n');

    // alice switches the team: bob's view follows
    r = await bash(alice, asWritten(steps[4]));
    assert.strictEqual(r.code, 0, r.out);
    await eventually("bob's tools/node to be node 20", () => bobNode() === '#!/bin/sh\necho v20.11.0\n', 60000);
    assert.ok(fs.existsSync(path.join(bob.home, '.local/share/strata/layers/node20')), "pulled into bob's default STRATA_HOME");
    await eventually('alice to see the decision applied on 2 of 2', async () => {
      const out = await bash(alice, `${prelude}strata team status --json`);
      const st = JSON.parse(out.out) as TeamStatus;
      return st.lastDecision?.applied === 2 && st.lastDecision.of === 2;
    });
  });
});
