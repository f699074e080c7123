/**
 * The NATS part of `npm run bench:team` (--only nats, or in the full run when nats-server is on
 * PATH): one nats-server with JetStream, started here in a temp folder and ended by its pid.
 *
 * - Propagation at 10, 100 and 1,000 agents: each agent is a NATS connection watching the
 *   decisions bucket through Strata's own Decisions (nats/decisions.ts: team MAC, signature, the
 *   replicated state), all in this process; one agent decides (compare-and-set into the bucket),
 *   "applied" is every other agent's register holding the decision. Presence is left out here
 *   (it is one value per agent per heartbeat, see docs/design.md).
 * - Decisions per second: one agent storing decisions back to back (each a read and a
 *   compare-and-set), and 10 agents at once on 10 keys.
 * - Memory per agent connection: the server's RSS before and after N connections that each watch
 *   the decisions bucket and the presence bucket, over N.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm } from '@nats-io/kv';
import { Decisions } from '../daemon/team/nats/decisions';
import { TeamState } from '../daemon/team/state';
import { HlcClock } from '../daemon/team/hlc';
import { Identity, KeyRing } from '../daemon/team/identity';
import { RefusalLog } from '../daemon/team/refusals';
import { deriveKey } from '../daemon/team/auth';
import { freePort, runNats } from '../test/integration/nats-helpers';

const TEAM = 'bench';
const KEY = deriveKey(Buffer.from('strata team nats benchmark secret'), TEAM);
const BUCKET = 'strata-bench';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function natsAvailable(): boolean {
  return spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface BenchNats {
  url: string;
  version: string;
  rssKb(): number;
  stop(): Promise<void>;
}

export async function startNats(log: (m: string) => void): Promise<BenchNats> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-nats-'));
  const port = await freePort();
  const store = path.join(dir, 'store');
  fs.writeFileSync(path.join(dir, 'nats.conf'), `host: 127.0.0.1\nport: ${port}\nmax_payload: 1MB\njetstream { store_dir: "${store}" }\n`);
  const srv = await runNats(dir, 'nats.conf', { NATS_PORT: String(port), NATS_STORE: store });
  const version = /Version:\s+(\S+)/.exec(srv.log())?.[1] ?? '?';
  log(`nats-server ${version} on 127.0.0.1:${port} (pid ${srv.proc.pid})`);
  return {
    url: srv.url,
    version,
    rssKb: () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8'))?.[1] ?? 0),
    stop: async () => {
      await srv.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Agent {
  nc: NatsConnection;
  state: TeamState;
  decisions: Decisions;
}

async function agents(url: string, n: number, dir: string, onChange: (i: number) => void): Promise<Agent[]> {
  const out: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const identity = Identity.generate();
    const state = new TeamState(identity.id, new HlcClock(identity.id), { sign: (ev) => identity.signEvent(TEAM, ev) });
    const nc = await connect({ servers: url, maxReconnectAttempts: -1 });
    const kv = await new Kvm(nc).create(BUCKET, { history: 64 });
    const decisions = new Decisions({
      kv,
      bucket: BUCKET,
      team: TEAM,
      key: KEY,
      agent: identity.id,
      state,
      keys: new KeyRing(),
      refusals: new RefusalLog(() => {}),
      log: () => {},
      cursorFile: path.join(dir, `cursor-${i}.json`),
      changed: () => onChange(i),
    });
    await decisions.start();
    out.push({ nc, state, decisions });
  }
  return out;
}

export interface NatsPropagation {
  agents: number;
  decisions: number;
  all: number[];
  each: number[];
}

/** Decide on one agent; wait until every other one holds it in its registers. */
export async function propagationNats(url: string, n: number, trials: number): Promise<NatsPropagation> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-natsp-'));
  const KEYNAME = 'layer:bench';
  let cur: { wall: number; logical: number; agent: string; t0: number; got: boolean[]; left: number; done: () => void } | null = null;
  const each: number[] = [];
  let list: Agent[] = [];
  const onChange = (i: number) => {
    const c = cur;
    if (!c || c.got[i]) return;
    const r = list[i].state.registers.get(KEYNAME);
    if (!r || r.tag.wall !== c.wall || r.tag.logical !== c.logical || r.tag.agent !== c.agent) return;
    c.got[i] = true;
    each.push(performance.now() - c.t0);
    if (--c.left === 0) c.done();
  };
  list = await agents(url, n, dir, onChange);
  await sleep(300);
  const all: number[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      const origin = list[t % n];
      const r = origin.state.registers.get(KEYNAME);
      const active = !(r && 'active' in r.value && r.value.active);
      const got = list.map((_, i) => i === t % n);
      let done!: () => void;
      const finished = new Promise<void>((res) => (done = res));
      const t0 = performance.now();
      const ev = origin.state.local([{ key: KEYNAME, value: { active } }], 'bench', 'bench');
      cur = { ...ev.tag, t0, got, left: n - 1, done };
      void origin.decisions.publish(ev);
      const timeout = sleep(20000).then(() => 'timeout');
      if ((await Promise.race([finished, timeout])) === 'timeout')
        throw new Error(`decision ${t} did not reach all ${n - 1} agents in 20 s`);
      all.push(performance.now() - t0);
      cur = null;
      await sleep(2 + Math.random() * 8);
    }
  } finally {
    for (const a of list) a.decisions.stop();
    await Promise.all(list.map((a) => a.nc.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { agents: n, decisions: trials, all, each };
}

/**
 * The server's fan-out alone: n connections watching the bucket with nothing of Strata's checks
 * (no MAC, signature or state); one put; the time until every watcher has it.
 */
export async function fanoutNats(url: string, n: number, trials: number): Promise<number[]> {
  const conns: NatsConnection[] = [];
  const stops: (() => void)[] = [];
  // Each watcher counts the trial's value when it arrives (it may arrive before the put's ack).
  let want = '';
  let left = 0;
  let done: () => void = () => {};
  try {
    for (let i = 0; i < n; i++) {
      const nc = await connect({ servers: url });
      conns.push(nc);
      const w = await (await new Kvm(nc).create(`${BUCKET}-fanout`, { history: 1 })).watch({ key: '>', include: 'updates' });
      stops.push(() => w.stop());
      void (async () => {
        for await (const e of w) if (e.string() === want && --left === 0) done();
      })();
    }
    const writer = await new Kvm(conns[0]).open(`${BUCKET}-fanout`);
    const out: number[] = [];
    for (let t = 0; t < trials; t++) {
      const finished = new Promise<void>((r) => (done = r));
      left = n;
      want = `v${t}`;
      const t0 = performance.now();
      await writer.put('k', want);
      if (left > 0) await Promise.race([finished, sleep(20000)]);
      out.push(performance.now() - t0);
      await sleep(5);
    }
    return out;
  } finally {
    for (const s of stops) s();
    await Promise.all(conns.map((c) => c.close()));
  }
}

/** Decisions stored per second: one writer back to back, then `parallel` writers on their own keys. */
export async function decisionsPerSecond(url: string, count: number, parallel: number): Promise<{ serial: number; parallel: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-natsd-'));
  const list = await agents(url, parallel, dir, () => {});
  const run = async (a: Agent, key: string, k: number) => {
    for (let i = 0; i < k; i++) await a.decisions.publish(a.state.local([{ key, value: { active: i % 2 === 0 } }], 'bench', 'bench'));
  };
  try {
    let t0 = performance.now();
    await run(list[0], 'layer:serial', count);
    const serial = count / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    await Promise.all(list.map((a, i) => run(a, `layer:p${i}`, Math.ceil(count / parallel))));
    const par = (parallel * Math.ceil(count / parallel)) / ((performance.now() - t0) / 1000);
    return { serial, parallel: par };
  } finally {
    for (const a of list) a.decisions.stop();
    await Promise.all(list.map((a) => a.nc.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's RSS per agent connection (each watching the decisions and the presence bucket). */
export async function memoryNats(
  srv: BenchNats,
  n: number,
): Promise<{ connections: number; kbPerConnection: number; rssBeforeMb: number; rssAfterMb: number }> {
  const first = await connect({ servers: srv.url });
  const kvm = new Kvm(first);
  await kvm.create(BUCKET, { history: 64 });
  await kvm.create(`${BUCKET}-presence`, { history: 1, ttl: 30_000 });
  await sleep(500);
  const before = srv.rssKb();
  const conns: { nc: NatsConnection; stop: () => void }[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const nc = await connect({ servers: srv.url });
      const k = new Kvm(nc);
      const w1 = await (await k.open(BUCKET)).watch({ key: '>' });
      const w2 = await (await k.open(`${BUCKET}-presence`)).watch({ key: '>' });
      conns.push({ nc, stop: () => (w1.stop(), w2.stop()) });
    }
    await sleep(1000);
    const after = srv.rssKb();
    return { connections: n, kbPerConnection: (after - before) / n, rssBeforeMb: before / 1024, rssAfterMb: after / 1024 };
  } finally {
    for (const c of conns) c.stop();
    await Promise.all(conns.map((c) => c.nc.close()));
    await first.close();
  }
}
