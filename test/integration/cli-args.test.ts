/**
 * The CLI checks every invocation against its command table before anything starts: wrong flags,
 * positionals and numbers exit 2 with the command's usage, and no agent is started for them. Help
 * comes from the same table. `strata relay` runs the relay process in the foreground.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Env, makeEnv } from './helpers';
import { eventually, startRelay, writeSecret } from './team-helpers';
import { socketPath } from '../../shared/paths';

describe('cli: invalid invocations are refused before anything starts', function () {
  let e: Env;
  before(() => {
    e = makeEnv('strata-cli-');
  });
  afterEach(function () {
    // Whatever a test ran, it must not have started an agent for this home.
    assert.ok(!fs.existsSync(path.join(e.home, 'agent.json')), `an agent record appeared after "${this.currentTest?.title}"`);
    assert.ok(!fs.existsSync(socketPath(e.home)), `an agent socket appeared after "${this.currentTest?.title}"`);
    assert.ok(!fs.existsSync(path.join(e.home, 'agent.log')), `an agent log appeared after "${this.currentTest?.title}"`);
  });
  after(async () => e.cleanup());

  it('refuses a flag the command does not take, naming it', async () => {
    const r = await e.cli('status', '--from', 'x');
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /^strata: unknown option --from$/m);
    assert.match(r.stderr, /^usage: strata status$/m);
    assert.strictEqual(r.stdout, '');
  });

  it("refuses activate's --when-idle on deactivate (issue 9 item 11), before starting the agent", async () => {
    const r = await e.cli('deactivate', 'node18', '--when-idle', '--timeout', '3');
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /^strata: unknown option --when-idle$/m);
    assert.match(r.stderr, /^usage: strata deactivate NAME\.\.\./m);
  });

  it('refuses a number that is not one, before starting the agent', async () => {
    const r = await e.cli('activate', 'x', '--when-idle', '--timeout', 'abc');
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /--timeout must be an integer, got "abc"/);
    assert.match(r.stderr, /^usage: strata activate NAME\.\.\. \[--when-idle \[--timeout SECONDS\]\]$/m);
    const bare = await e.cli('activate', 'x', '--timeout', 'abc');
    assert.strictEqual(bare.code, 2, bare.stderr);
  });

  it('refuses --timeout without --when-idle, which would be ignored', async () => {
    const r = await e.cli('activate', 'x', '--timeout', '5');
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /--timeout goes with --when-idle/);
  });

  it('refuses missing and extra positionals', async () => {
    const missing = await e.cli('layer', 'map', 'good', '/x');
    assert.strictEqual(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /expected layer map NAME ORIGINAL DESTINATION/);
    const none = await e.cli('deactivate');
    assert.strictEqual(none.code, 2, none.stderr);
    assert.match(none.stderr, /expected deactivate NAME\.\.\./);
    const extra = await e.cli('swap', 'a', 'b', 'c');
    assert.strictEqual(extra.code, 2, extra.stderr);
    assert.match(extra.stderr, /unexpected argument "c"/);
    const status = await e.cli('status', 'now');
    assert.strictEqual(status.code, 2, status.stderr);
  });

  it('refuses a missing required flag, a flag without its value and a value on a switch', async () => {
    const from = await e.cli('layer', 'create', 'n');
    assert.strictEqual(from.code, 2, from.stderr);
    assert.match(from.stderr, /layer create needs --from DIR/);
    const value = await e.cli('layer', 'create', 'n', '--from');
    assert.strictEqual(value.code, 2, value.stderr);
    assert.match(value.stderr, /--from needs a value/);
    const sw = await e.cli('deactivate', 'n', '--force=yes');
    assert.strictEqual(sw.code, 2, sw.stderr);
    assert.match(sw.stderr, /--force takes no value/);
    const secret = await e.cli('team', 'join', 'ws://127.0.0.1:1');
    assert.strictEqual(secret.code, 2, secret.stderr);
    assert.match(secret.stderr, /team join needs --secret-file FILE \(the secret never goes on the command line\)/);
  });

  it("checks the relay's flags before running it", async () => {
    const r = await e.cli('relay', '--listen', '127.0.0.1:0');
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /relay needs --secret-file FILE/);
    const tls = await e.cli('relay', '--listen', '127.0.0.1:0', '--secret-file', 's', '--tls-cert', 'c.pem');
    assert.strictEqual(tls.code, 2, tls.stderr);
    assert.match(tls.stderr, /--tls-cert and --tls-key go together/);
  });

  it('refuses an unknown command and an unknown subcommand', async () => {
    const r = await e.cli('frobnicate', '--json');
    assert.strictEqual(r.code, 2, r.stderr);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    const sub = await e.cli('layer', 'frobnicate');
    assert.strictEqual(sub.code, 2, sub.stderr);
    assert.match(sub.stderr, /expected layer create\|list\|show\|rm\|map\|unmap\|exclude\|hide\|reset\|export\|import/);
    const help = await e.cli('help', 'frobnicate');
    assert.strictEqual(help.code, 2, help.stderr);
  });

  it("prints one command's help, with an example, for COMMAND --help", async () => {
    for (const args of [
      ['layer', 'map', '--help'],
      ['help', 'layer', 'map'],
      ['layer', 'map', 'a', '--bogus', '-h'],
    ]) {
      const r = await e.cli(...args);
      assert.strictEqual(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^usage: strata layer map NAME ORIGINAL DESTINATION\n/);
      assert.match(r.stdout, /^example:\n {2}strata layer map \S+ \S+ \S+/m);
      assert.ok(!/layer unmap|layer create|view add|relay/.test(r.stdout), `only layer map's help:\n${r.stdout}`);
    }
  });

  it('lists every command for --help and help, and the usage for no command at all', async () => {
    for (const args of [['--help'], ['help'], ['-h']]) {
      const r = await e.cli(...args);
      assert.strictEqual(r.code, 0, r.stderr);
      for (const cmd of [
        'agent start',
        'agent stop',
        'status',
        'layer create NAME --from DIR',
        'layer map NAME ORIGINAL DESTINATION',
        'view add BASE',
        'activate NAME...',
        'deactivate NAME... [--force]',
        'swap OLD NEW',
        'team join URL --secret-file FILE',
        'team revert ID',
        'relay --listen HOST:PORT',
      ]) {
        assert.ok(r.stdout.includes(`\n  ${cmd}`), `"${cmd}" in strata ${args.join(' ')}:\n${r.stdout}`);
      }
    }
    const none = await e.cli();
    assert.strictEqual(none.code, 2);
    assert.match(none.stdout, /^usage: strata COMMAND/);
    const group = await e.cli('team', '--help');
    assert.strictEqual(group.code, 0, group.stderr);
    assert.match(group.stdout, /team hold NAME/);
    assert.ok(!group.stdout.includes('layer create'), group.stdout);
  });
});

describe('cli: valid invocations', function () {
  let e: Env;
  before(() => {
    e = makeEnv('strata-cli-');
  });
  after(async () => e.cleanup());

  it('still takes --json before the command, and -- before a positional that starts with "-"', async () => {
    await e.ok('agent', 'start');
    assert.deepStrictEqual(JSON.parse(await e.ok('--json', 'layer', 'list')), []);
    const r = await e.cli('layer', 'show', '--', '-n');
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /^strata: E_LAYER_UNKNOWN: .*"-n"/m);
  });
});

describe('cli: strata relay runs the relay process in the foreground', function () {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-cli-relay-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const refused = (url: string) => () =>
    new Promise<boolean>((res) => {
      const u = new URL(url);
      const s = net.connect(Number(u.port), u.hostname);
      s.once('connect', () => {
        s.destroy();
        res(false);
      });
      s.once('error', () => res(true));
    });

  it('stops on SIGTERM with status 0', async () => {
    const relay = await startRelay(writeSecret(dir));
    const exited = new Promise<number | null>((res) => relay.proc.once('exit', (code) => res(code)));
    relay.stop();
    assert.strictEqual(await exited, 0);
    await eventually('the relay port to close', refused(relay.url));
  });

  it('does not outlive a CLI killed with SIGKILL', async () => {
    const relay = await startRelay(writeSecret(dir));
    relay.proc.kill('SIGKILL');
    await eventually('the relay port to close', refused(relay.url));
  });

  it('reports a bad secret file as before: E_TEAM_SECRET, status 1', async () => {
    const secret = writeSecret(dir);
    fs.chmodSync(secret, 0o644);
    const e = makeEnv('strata-cli-relay-');
    try {
      const r = await e.cli('relay', '--listen', '127.0.0.1:0', '--secret-file', secret);
      assert.strictEqual(r.code, 1, r.stderr);
      assert.match(r.stderr, /^strata: E_TEAM_SECRET: team secret .* is accessible by group or others/m);
      assert.match(r.stderr, /^ {2}Check --listen and the secret file \(chmod 600\)\.$/m);
    } finally {
      await e.cleanup();
    }
  });
});
