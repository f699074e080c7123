/**
 * Writing strata.team.json from the CLI: team init (with a new 0600 secret, never printed), team add
 * and team remove keeping the digests right, and layer show printing the digest the file pins.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { execFile } from 'child_process';
import { CLI, CliResult, Env, makeEnv, writeTree } from './helpers';
import { digestLayerDir } from '../../daemon/team/digest';

interface TeamFileJson {
  team: string;
  relays: string[];
  layers: Record<string, { digest: string; version?: string }>;
  defaults: string[];
  slots: Record<string, string[]>;
}

describe('team file: init, add, remove, and the digest in layer show', function () {
  this.timeout(60000);
  let e: Env;
  let repo: string;
  /** The CLI run in folder `cwd`. */
  const cliIn = (cwd: string, ...args: string[]): Promise<CliResult> =>
    new Promise((res) =>
      execFile(process.execPath, [CLI, ...args], { env: e.env, cwd, timeout: 60000 }, (err, stdout, stderr) =>
        res({ code: err ? ((err as unknown as { code: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
      ),
    );
  const inRepo = (...args: string[]) => cliIn(repo, ...args);
  const teamFile = () => JSON.parse(fs.readFileSync(path.join(repo, 'strata.team.json'), 'utf8')) as TeamFileJson;
  const digest = (name: string) => digestLayerDir(path.join(e.home, 'layers', name));

  before(async () => {
    e = makeEnv('strata-teamfile-');
    repo = path.join(e.dir, 'acme-project');
    fs.mkdirSync(path.join(repo, 'sub'), { recursive: true });
    for (const n of ['node18', 'node20', 'jdk21']) {
      writeTree(path.join(e.dir, n), { 'bin/tool': `${n}\n` });
      await e.ok('layer', 'create', n, '--from', path.join(e.dir, n), '--version', n.slice(-2));
    }
  });
  after(async () => e.cleanup());

  it('prints the content digest in layer show, and in its JSON', async () => {
    const want = await digest('node20');
    assert.match((await e.ok('layer', 'show', 'node20')).toString(), new RegExp(`^ {2}digest: +${want}$`, 'm'));
    assert.strictEqual((await e.json<{ digest: string }>('layer', 'show', 'node20')).digest, want);
  });

  it('refuses a team file or a secret that exists, before writing anything', async () => {
    fs.writeFileSync(path.join(repo, 'old.secret'), 'keep me\n', { mode: 0o600 });
    const r = await inRepo('team', 'init', '--secret-file', 'old.secret', '--new-secret');
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /E_TEAM_SECRET: .*old\.secret exists; a new secret never replaces one/);
    assert.ok(!fs.existsSync(path.join(repo, 'strata.team.json')));
    assert.strictEqual(fs.readFileSync(path.join(repo, 'old.secret'), 'utf8'), 'keep me\n');
    const alone = await inRepo('team', 'init', '--new-secret');
    assert.strictEqual(alone.code, 2, alone.stderr);
    assert.match(alone.stderr, /--new-secret and --secret-file go together/);
    const slot = await inRepo('team', 'init', '--slot', 'node');
    assert.strictEqual(slot.code, 2, slot.stderr);
  });

  it('writes the team file with the digests of this agent, and a new secret readable by its owner only', async () => {
    const secret = path.join(e.dir, 'secrets', 'acme.secret');
    const r = await inRepo(
      'team',
      'init',
      '--relay',
      'ws://relay.example.com:7450',
      '--relay',
      'wss://backup.example.com',
      '--layer',
      'node18',
      '--layer',
      'node20',
      '--slot',
      'node=node18,node20',
      '--secret-file',
      secret,
      '--new-secret',
    );
    assert.strictEqual(r.code, 0, r.stderr);
    const t = teamFile();
    assert.strictEqual(t.team, 'acme-project', 'named after its folder');
    assert.deepStrictEqual(t.relays, ['ws://relay.example.com:7450', 'wss://backup.example.com']);
    assert.deepStrictEqual(t.layers, {
      node18: { digest: await digest('node18'), version: '18' },
      node20: { digest: await digest('node20'), version: '20' },
    });
    assert.deepStrictEqual(t.slots, { node: ['node18', 'node20'] });
    const value = fs.readFileSync(secret, 'utf8');
    assert.match(value, /^[0-9a-f]{64}\n$/);
    assert.strictEqual(fs.statSync(secret).mode & 0o777, 0o600);
    assert.ok(!(r.stdout + r.stderr).includes(value.trim()), 'the secret is never printed');
    const again = await inRepo('team', 'init');
    assert.strictEqual(again.code, 1);
    assert.match(again.stderr, /strata\.team\.json exists/);
  });

  it('adds a layer, updates the digest of a changed one, and says which is unchanged', async () => {
    const r = await cliIn(path.join(repo, 'sub'), 'team', 'add', 'jdk21', 'node18'); // found upward
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /jdk21: added \(sha256:/);
    assert.match(r.stdout, /node18: unchanged/);
    assert.strictEqual(teamFile().layers.jdk21.digest, await digest('jdk21'));

    const before = teamFile().layers.node20.digest;
    await e.ok('layer', 'map', 'node20', '/tools/node', '/'); // layer.json is part of the digest
    const changed = await inRepo('team', 'add', 'node20');
    assert.strictEqual(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /node20: digest sha256:\S+ -> sha256:/);
    assert.notStrictEqual(teamFile().layers.node20.digest, before);
    assert.strictEqual(teamFile().layers.node20.digest, await digest('node20'));
    assert.deepStrictEqual(teamFile().slots, { node: ['node18', 'node20'] }, 'the rest kept');

    const unknown = await inRepo('team', 'add', 'nosuch');
    assert.strictEqual(unknown.code, 1);
    assert.match(unknown.stderr, /E_LAYER_UNKNOWN/);
  });

  it('removes layers from the layers, defaults and slots, and refuses one it does not list', async () => {
    const r = await inRepo('team', 'remove', 'node18');
    assert.strictEqual(r.code, 0, r.stderr);
    const t = teamFile();
    assert.deepStrictEqual(Object.keys(t.layers).sort(), ['jdk21', 'node20']);
    assert.deepStrictEqual(t.slots, { node: ['node20'] });
    const again = await inRepo('team', 'remove', 'node18');
    assert.strictEqual(again.code, 1);
    assert.match(again.stderr, /E_LAYER_UNKNOWN: "node18" is not a team layer of .*strata\.team\.json/);
  });

  it('says where to write one when there is no team file', async () => {
    const r = await cliIn(e.dir, 'team', 'add', 'node20');
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /E_TEAM_INVALID: no strata\.team\.json in .* or above/);
    assert.match(r.stderr, /strata team init/);
  });
});
