/**
 * The team over a three-node NATS cluster (docs/nats/cluster.conf) with JetStream replicas 3: one
 * node is killed (SIGKILL) while decisions are being made; no decision the agents made is lost,
 * and every agent converges.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Env, makeEnv, writeTree } from './helpers';
import { eventually, writeSecret } from './team-helpers';
import { NatsServer, PASSWORDS, startCluster, writeCredentials } from './nats-helpers';
import { digestLayerDir } from '../../daemon/team/digest';
import { TeamStatus } from '../../protocol';

const read = (p: string): string | null => {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};

describe('team over a NATS cluster with replicas 3', function () {
  this.timeout(240000);
  let shared: string;
  let servers: NatsServer[];
  const agents: Env[] = [];
  const NODE18 = '#!/bin/sh\necho v18\n';
  const NODE20 = '#!/bin/sh\necho v20\n';
  const node = (e: Env) => read(path.join(e.mnt, 'bin/node'));

  after(async () => {
    for (const e of agents) await e.cleanup();
    for (const s of servers ?? []) await s.stop();
    if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(shared, { recursive: true, force: true });
  });

  it('loses no decision when a node is killed mid-run, and every agent converges', async () => {
    shared = fs.mkdtempSync('/tmp/strata-nats-cluster-');
    writeTree(path.join(shared, 'node18'), { 'bin/node': NODE18 });
    writeTree(path.join(shared, 'node20'), { 'bin/node': NODE20 });
    const secret = writeSecret(shared);
    servers = await startCluster(path.join(shared, 'nats'));
    const creds = {
      alice: writeCredentials(shared, 'alice', PASSWORDS.ACME_ALICE_PASSWORD),
      bob: writeCredentials(shared, 'bob', PASSWORDS.ACME_BOB_PASSWORD),
      carol: writeCredentials(shared, 'carol', PASSWORDS.ACME_CAROL_PASSWORD),
    };
    const mk = async () => {
      const e = makeEnv('strata-natsc-');
      agents.push(e);
      writeTree(e.base, { 'bin/node': '#!/bin/sh\necho system\n' });
      for (const l of ['node18', 'node20']) await e.ok('layer', 'create', l, '--from', path.join(shared, l));
      await e.ok('view', 'add', e.base, '--at', e.mnt);
      return e;
    };
    const [a, b, c] = [await mk(), await mk(), await mk()];
    const layers: Record<string, { digest: string }> = {};
    for (const l of ['node18', 'node20']) layers[l] = { digest: await digestLayerDir(path.join(a.home, 'layers', l)) };
    const teamFile = path.join(shared, 'strata.team.json');
    const urls = servers.map((s) => s.url);
    fs.writeFileSync(
      teamFile,
      JSON.stringify({ format: 1, team: 'acme', relays: urls, layers, defaults: ['node18'], slots: { node: ['node18', 'node20'] } }),
    );
    // Each agent dials a different node; the client learns the others from the cluster.
    const users = ['alice', 'bob', 'carol'] as const;
    for (const [i, e] of [a, b, c].entries()) {
      await e.ok(
        'team',
        'join',
        urls[i],
        '--secret-file',
        secret,
        '--team-file',
        teamFile,
        '--credentials',
        creds[users[i]],
        '--name',
        users[i],
      );
    }
    await eventually('all three to see each other', async () => (await a.json<TeamStatus>('team', 'status')).peers?.length === 2);

    const nc = await connect({ servers: urls[1], user: 'bob', pass: PASSWORDS.ACME_BOB_PASSWORD });
    const info = await (await jetstreamManager(nc)).streams.info('KV_strata-acme');
    await nc.close();
    assert.strictEqual(info.config.num_replicas, 3, 'the decisions bucket has three replicas');

    // Decisions from A (on n1) and C (on n3); n1 is killed after the third.
    const made: string[] = [];
    for (let i = 0; i < 8; i++) {
      const who = i % 2 ? c : a;
      const to = i % 2 ? 'node18' : 'node20';
      if (i === 3) await servers[0].stop('SIGKILL');
      const r = await who.json<{ decision?: string }>('activate', to);
      if (r.decision) made.push(r.decision);
    }
    assert.ok(made.length >= 6, `decisions made: ${made.join(', ')}`);
    for (const e of [a, b, c]) await eventually('every agent on node 18', () => node(e) === NODE18, 60000);
    for (const e of [a, b, c]) {
      await eventually('every decision in every history', async () => {
        const ids = new Set((await e.json<{ origin: string; seq: number }[]>('team', 'history')).map((x) => `${x.origin}:${x.seq}`));
        return made.every((d) => ids.has(d));
      });
    }
    // A newcomer reads the same from the two nodes left.
    const d = await mk();
    await d.ok('team', 'join', urls[2], '--secret-file', secret, '--team-file', teamFile, '--credentials', creds.carol, '--name', 'dan');
    await eventually('the newcomer on node 18', () => node(d) === NODE18);
    const dl = await eventually('the newcomer to hold the last decision', async () => {
      const s = await d.json<TeamStatus>('team', 'status');
      return s.lastDecision?.id === made.at(-1) ? s : null;
    });
    assert.deepStrictEqual(dl.desired, ['node18']);
  });
});
