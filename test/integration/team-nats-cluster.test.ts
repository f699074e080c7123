/**
 * The team over a three-node NATS cluster (docs/nats/cluster.conf) with JetStream replicas 3: one
 * node is killed (SIGKILL) while decisions are being made; no decision the agents made is lost,
 * and every agent converges.
 */
import * as assert from 'assert';
import * as path from 'path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Env, writeTree } from './helpers';
import { TeamFixture, eventually, layerDigests, readText as read } from './team-helpers';
import { NatsServer, PASSWORDS, startCluster, teamCredentials } from './nats-helpers';
import { TeamStatus } from '../../protocol';

describe('team over a NATS cluster with replicas 3', function () {
  this.timeout(240000);
  let t: TeamFixture;
  let servers: NatsServer[];
  const NODE18 = '#!/bin/sh\necho v18\n';
  const NODE20 = '#!/bin/sh\necho v20\n';
  const node = (e: Env) => read(path.join(e.mnt, 'bin/node'));

  after(async () => t?.cleanup());

  it('loses no decision when a node is killed mid-run, and every agent converges', async () => {
    t = new TeamFixture('strata-nats-cluster-');
    writeTree(path.join(t.dir, 'node18'), { 'bin/node': NODE18 });
    writeTree(path.join(t.dir, 'node20'), { 'bin/node': NODE20 });
    servers = await startCluster(path.join(t.dir, 'nats'));
    t.stopServer = async () => {
      for (const s of servers) await s.stop();
    };
    const creds = teamCredentials(t.dir);
    const mk = () =>
      t.agent({
        prefix: 'strata-natsc-',
        base: { 'bin/node': '#!/bin/sh\necho system\n' },
        layers: { node18: ['--from', path.join(t.dir, 'node18')], node20: ['--from', path.join(t.dir, 'node20')] },
      });
    const [a, b, c] = [await mk(), await mk(), await mk()];
    const urls = servers.map((s) => s.url);
    t.writeTeamFile({
      relays: urls,
      layers: await layerDigests(a.home, ['node18', 'node20']),
      defaults: ['node18'],
      slots: { node: ['node18', 'node20'] },
    });
    // Each agent dials a different node; the client learns the others from the cluster.
    const users = ['alice', 'bob', 'carol'] as const;
    for (const [i, e] of [a, b, c].entries()) await t.join(e, users[i], ['--credentials', creds[users[i]]], urls[i]);
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
    await t.join(d, 'dan', ['--credentials', creds.carol], urls[2]);
    await eventually('the newcomer on node 18', () => node(d) === NODE18);
    const dl = await eventually('the newcomer to hold the last decision', async () => {
      const s = await d.json<TeamStatus>('team', 'status');
      return s.lastDecision?.id === made.at(-1) ? s : null;
    });
    assert.deepStrictEqual(dl.desired, ['node18']);
  });
});
