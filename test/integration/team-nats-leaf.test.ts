/**
 * Several offices on NATS: a hub with the team's JetStream domain (docs/nats/hub.conf) and an
 * office's leaf node without JetStream (docs/nats/leaf.conf), both from the documented configs.
 * An agent on the hub and one on the leaf switch together through the hub's buckets; without the
 * team file's jetstreamDomain, joining through the leaf is refused with what to fix.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { Env, makeEnv, writeTree } from './helpers';
import { eventually, writeSecret } from './team-helpers';
import { NatsServer, PASSWORDS, startHubAndLeaf, writeCredentials } from './nats-helpers';
import { digestLayerDir } from '../../daemon/team/digest';
import { TeamStatus } from '../../protocol';

const read = (p: string): string | null => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};

describe('team over NATS: offices joined by a leaf node', function () {
  this.timeout(180000);
  let shared: string;
  let secret: string;
  let hub: NatsServer;
  let leaf: NatsServer;
  const agents: Env[] = [];
  let a: Env, b: Env;
  let layers: Record<string, { digest: string }>;

  async function agent(): Promise<Env> {
    const e = makeEnv('strata-nats-leaf-');
    agents.push(e);
    writeTree(e.base, { 'bin/node': 'system\n' });
    for (const l of ['node18', 'node20']) await e.ok('layer', 'create', l, '--from', path.join(shared, l));
    await e.ok('view', 'add', e.base, '--at', e.mnt);
    return e;
  }

  function teamFile(name: string, extra: Record<string, unknown>): string {
    const f = path.join(shared, name);
    fs.writeFileSync(f, JSON.stringify({ format: 1, team: 'acme', relays: [leaf.url], layers, defaults: [], slots: {}, ...extra }));
    return f;
  }

  const join = (e: Env, url: string, user: 'alice' | 'bob', file: string) =>
    e.cli(
      'team',
      'join',
      url,
      '--secret-file',
      secret,
      '--team-file',
      file,
      '--credentials',
      path.join(shared, `${user}.nats.json`),
      '--name',
      user,
    );

  before(async () => {
    shared = fs.mkdtempSync('/tmp/strata-nats-leaf-');
    writeTree(path.join(shared, 'node18'), { 'bin/node': 'v18\n' });
    writeTree(path.join(shared, 'node20'), { 'bin/node': 'v20\n' });
    secret = writeSecret(shared);
    writeCredentials(shared, 'alice', PASSWORDS.ACME_ALICE_PASSWORD);
    writeCredentials(shared, 'bob', PASSWORDS.ACME_BOB_PASSWORD);
    ({ hub, leaf } = await startHubAndLeaf(path.join(shared, 'nats')));
    a = await agent();
    b = await agent();
    layers = {};
    for (const l of ['node18', 'node20']) layers[l] = { digest: await digestLayerDir(path.join(a.home, 'layers', l)) };
  });

  after(async () => {
    for (const e of agents) await e.cleanup();
    await leaf?.stop();
    await hub?.stop();
    if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(shared, { recursive: true, force: true });
  });

  it('refuses to join through the leaf without the hub domain, saying what to set', async () => {
    const r = await join(b, leaf.url, 'bob', teamFile('no-domain.team.json', {}));
    assert.notStrictEqual(r.code, 0);
    assert.match(r.stderr, /E_TEAM_CONNECT: the NATS server at nats:\/\/127\.0\.0\.1:\d+ does not offer JetStream/);
    assert.match(r.stderr, /jetstreamDomain/);
    assert.deepStrictEqual(await b.json<TeamStatus>('team', 'status'), { joined: false });
  });

  it('an agent on the hub and one on the leaf switch together through the hub buckets', async () => {
    const file = teamFile('strata.team.json', { jetstreamDomain: 'hub' });
    const ja = await join(a, hub.url, 'alice', file);
    assert.strictEqual(ja.code, 0, ja.stderr);
    const jb = await join(b, leaf.url, 'bob', file);
    assert.strictEqual(jb.code, 0, jb.stderr);
    await eventually('each to see the other', async () =>
      (await a.json<TeamStatus>('team', 'status')).peers?.some((p) => p.user === 'bob'),
    );
    await a.ok('activate', 'node20');
    await eventually("B's view to follow A", () => read(path.join(b.mnt, 'bin/node')) === 'v20\n');
    await b.ok('swap', 'node20', 'node18');
    await eventually("A's view to follow B", () => read(path.join(a.mnt, 'bin/node')) === 'v18\n');
    await b.ok('deactivate', 'node18');
    await eventually('A to pass through again', () => read(path.join(a.mnt, 'bin/node')) === 'system\n');
    assert.match(read(path.join(b.home, 'agent.log')) ?? '', new RegExp(`connected to NATS at 127\\.0\\.0\\.1:${leaf.port}`));
  });
});
