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
import { spawn, spawnSync } from 'child_process';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import { Decisions } from '../daemon/team/nats/decisions';
import { TeamState } from '../daemon/team/state';
import { HlcClock } from '../daemon/team/hlc';
import { Identity, KeyRing } from '../daemon/team/identity';
import { RefusalLog } from '../daemon/team/refusals';
import { deriveKey } from '../daemon/team/auth';
import { freePort } from '../test/integration/nats-helpers';

const TEAM = 'bench';
const KEY = deriveKey(Buffer.from('strata team nats benchmark secret'), TEAM);
const BUCKET = 'strata-bench';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function natsAvailable(): boolean {
  return spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface BenchNats {
  /** Every server's URL, comma-separated (what a client is given). */
  url: string;
  version: string;
  servers: number;
  /** RSS of the servers together. */
  rssKb(): number;
  /** CPU time of the servers together so far (user + system, ms). */
  cpuMs(): number;
  stop(): Promise<void>;
}

function procStatus(pid: number | undefined, field: string): number {
  try {
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** utime + stime of a process in ms (clock ticks of 10 ms). */
function procCpuMs(pid: number | undefined): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * 10;
  } catch {
    return 0;
  }
}

/** One nats-server with JetStream, or `servers` of them in one cluster (replicas 3 then). */
export async function startNats(log: (m: string) => void, servers = 1): Promise<BenchNats> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-nats-'));
  const ports = await Promise.all(Array.from({ length: servers }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: servers }, () => freePort()));
  const procs = ports.map((port, i) => {
    const cluster =
      servers > 1
        ? `server_name: n${i + 1}\ncluster { name: bench, host: 127.0.0.1, port: ${routePorts[i]}, routes: [${routePorts
            .map((p) => `nats://127.0.0.1:${p}`)
            .join(', ')}] }\n`
        : '';
    const conf = path.join(dir, `n${i + 1}.conf`);
    fs.writeFileSync(conf, `host: 127.0.0.1\nport: ${port}\nmax_payload: 1MB\n${cluster}jetstream { store_dir: "${dir}/store${i + 1}" }\n`);
    return spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  });
  const outs = procs.map((p) => {
    const o = { text: '' };
    p.stderr!.on('data', (d) => (o.text += String(d)));
    return o;
  });
  const stop = async () => {
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      }),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const end = Date.now() + 20000;
  // A cluster is ready for JetStream once its meta leader is elected.
  const ready = (t: string) =>
    t.includes('Server is ready') &&
    (servers === 1 || /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/.test(t));
  while (!(outs.every((o) => o.text.includes('Server is ready')) && (servers === 1 || outs.some((o) => ready(o.text))))) {
    if (procs.some((p) => p.exitCode !== null) || Date.now() > end) {
      await stop();
      throw new Error(`nats-server did not start: ${outs.map((o) => o.text).join('\n')}`);
    }
    await sleep(20);
  }
  // ... and can place three replicas once every server has joined it: a probe bucket tells.
  for (let ok = servers === 1; !ok;) {
    const nc = await connect({ servers: ports.map((p) => `nats://127.0.0.1:${p}`) });
    try {
      await (await new Kvm(nc).create('probe', { replicas: 3 })).destroy();
      ok = true;
    } catch (e) {
      if (Date.now() > end) {
        await stop();
        throw new Error(`the cluster cannot place 3 replicas: ${(e as Error).message}`, { cause: e });
      }
      await sleep(250);
    } finally {
      await nc.close();
    }
  }
  const version = /Version:\s+(\S+)/.exec(outs[0].text)?.[1] ?? '?';
  log(
    `nats-server ${version}: ${servers} server${servers > 1 ? 's in a cluster' : ''} on 127.0.0.1:${ports.join(',')} (pid ${procs.map((p) => p.pid).join(',')})`,
  );
  return {
    url: ports.map((p) => `nats://127.0.0.1:${p}`).join(','),
    version,
    servers,
    rssKb: () => procs.reduce((a, p) => a + procStatus(p.pid, 'VmRSS'), 0),
    cpuMs: () => procs.reduce((a, p) => a + procCpuMs(p.pid), 0),
    stop,
  };
}

interface Agent {
  nc: NatsConnection;
  state: TeamState;
  decisions: Decisions;
}

async function agents(srv: BenchNats, n: number, dir: string, onChange: (i: number) => void): Promise<Agent[]> {
  const out: Agent[] = [];
  const one = async (i: number): Promise<Agent> => {
    const identity = Identity.generate();
    const state = new TeamState(identity.id, new HlcClock(identity.id), { sign: (ev) => identity.signEvent(TEAM, ev) });
    const nc = await connect({ servers: srv.url.split(','), maxReconnectAttempts: -1 });
    const kv = await new Kvm(nc).create(BUCKET, { history: 64, replicas: srv.servers >= 3 ? 3 : 1 });
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
    return { nc, state, decisions };
  };
  // The first makes the bucket; the rest join 25 at a time.
  out.push(await one(0));
  for (let i = 1; i < n; i += 25) out.push(...(await Promise.all(Array.from({ length: Math.min(25, n - i) }, (_, j) => one(i + j)))));
  return out;
}

/** CPU time of this process (µs) and of the servers (ms), to charge a phase per delivery. */
function cpuMark(srv: BenchNats): () => { benchUs: number; serverUs: number } {
  const c0 = process.cpuUsage();
  const s0 = srv.cpuMs();
  return () => {
    const c = process.cpuUsage(c0);
    return { benchUs: c.user + c.system, serverUs: (srv.cpuMs() - s0) * 1000 };
  };
}

export interface NatsPropagation {
  agents: number;
  decisions: number;
  all: number[];
  each: number[];
  /** CPU time per delivery (one decision reaching one agent) while deciding: the agents' process, the server(s). */
  benchUsPerDelivery: number;
  serverUsPerDelivery: number;
}

/** Decide on one agent; wait until every other one holds it in its registers. */
export async function propagationNats(srv: BenchNats, n: number, trials: number): Promise<NatsPropagation> {
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
  list = await agents(srv, n, dir, onChange);
  // Every agent pins each origin's key the first time it hears from it: done here, once, as a
  // team that has worked together for a while has (one decision from every origin that decides).
  const warm = Math.min(n, trials);
  for (let t = 0; t < warm; t++) {
    await list[t].decisions.publish(list[t].state.local([{ key: 'layer:warm', value: { active: true } }], 'bench', 'bench'));
  }
  await sleep(300 + n);
  const all: number[] = [];
  let cpu: { benchUs: number; serverUs: number };
  try {
    const mark = cpuMark(srv);
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
    cpu = mark();
  } finally {
    for (const a of list) a.decisions.stop();
    await Promise.all(list.map((a) => a.nc.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const deliveries = trials * (n - 1);
  return {
    agents: n,
    decisions: trials,
    all,
    each,
    benchUsPerDelivery: cpu.benchUs / deliveries,
    serverUsPerDelivery: cpu.serverUs / deliveries,
  };
}

/**
 * The server's fan-out alone: n connections watching the bucket with nothing of Strata's checks
 * (no MAC, signature or state); one put; the time until every watcher has it. Connections are
 * made 50 at a time; a run that cannot make them all says how many it made.
 */
export async function fanoutNats(
  srv: BenchNats,
  n: number,
  trials: number,
  log: (m: string) => void,
): Promise<{ ms: number[]; benchUsPerDelivery: number; serverUsPerDelivery: number; rssMb: number; setupS: number }> {
  const conns: NatsConnection[] = [];
  const stops: (() => void)[] = [];
  // Each watcher counts the trial's value when it arrives (it may arrive before the put's ack).
  let want = '';
  let left = 0;
  let done: () => void = () => {};
  const bucket = `${BUCKET}-fanout`;
  const t0 = performance.now();
  try {
    const first = await connect({ servers: srv.url.split(',') });
    conns.push(first);
    await new Kvm(first).create(bucket, { history: 1, replicas: srv.servers >= 3 ? 3 : 1 });
    const watcher = async () => {
      const nc = await connect({ servers: srv.url.split(','), maxReconnectAttempts: -1 });
      conns.push(nc);
      const w = await (await new Kvm(nc).open(bucket)).watch({ key: '>', include: 'updates' });
      stops.push(() => w.stop());
      void (async () => {
        for await (const e of w) if (e.string() === want && --left === 0) done();
      })();
    };
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i) }, watcher)).catch((e) => {
        throw new Error(`${n} watchers: connection ${stops.length + 1} failed (${(e as Error).message})`, { cause: e });
      });
      if (i % 1000 === 950)
        log(`  ${i + 50} watchers (${((performance.now() - t0) / 1000).toFixed(0)} s, server RSS ${(srv.rssKb() / 1024).toFixed(0)} MB)`);
    }
    const setupS = (performance.now() - t0) / 1000;
    await sleep(500);
    // The put's acknowledgement may wait behind the fan-out to every watcher: allow it a minute.
    const writer = await new Kvm(jetstream(first, { timeout: 60000 })).open(bucket);
    const out: number[] = [];
    const mark = cpuMark(srv);
    for (let t = 0; t < trials; t++) {
      const finished = new Promise<void>((r) => (done = r));
      left = n;
      want = `v${t}`;
      const t1 = performance.now();
      await writer.put('k', want).catch((e) => {
        throw new Error(`put ${t} to ${n} watchers: ${(e as Error).message}`, { cause: e });
      });
      if (left > 0 && (await Promise.race([finished.then(() => 'ok'), sleep(60000).then(() => 'timeout')])) === 'timeout')
        throw new Error(`put ${t} reached ${n - left} of ${n} watchers in 60 s`);
      out.push(performance.now() - t1);
      await sleep(5);
    }
    const cpu = mark();
    return {
      ms: out,
      benchUsPerDelivery: cpu.benchUs / (trials * n),
      serverUsPerDelivery: cpu.serverUs / (trials * n),
      rssMb: srv.rssKb() / 1024,
      setupS,
    };
  } finally {
    for (const s of stops) s();
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
  }
}

/**
 * Decisions stored per second: one agent alone storing back to back (the only watcher, so the
 * figure is the store's round trip and this agent's signing), then `parallel` agents at once on
 * their own keys, each also watching and checking everyone's decisions as agents do (in this one
 * process: its CPU time per decision is reported beside it).
 */
export async function decisionsPerSecond(
  srv: BenchNats,
  count: number,
  parallel: number,
): Promise<{ serial: number; parallel: number; serialCpuUs: number; parallelCpuUs: number }> {
  const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-natsd-')));
  const list = await agents(srv, 1, dirs[0], () => {});
  const run = async (a: Agent, key: string, k: number) => {
    for (let i = 0; i < k; i++) await a.decisions.publish(a.state.local([{ key, value: { active: i % 2 === 0 } }], 'bench', 'bench'));
  };
  try {
    let mark = cpuMark(srv);
    let t0 = performance.now();
    await run(list[0], 'layer:serial', count);
    const serial = count / ((performance.now() - t0) / 1000);
    const serialCpuUs = mark().benchUs / count;
    list.push(...(await agents(srv, parallel - 1, dirs[1], () => {})));
    await sleep(500);
    const k = Math.ceil(count / parallel);
    mark = cpuMark(srv);
    t0 = performance.now();
    await Promise.all(list.map((a, i) => run(a, `layer:p${i}`, k)));
    const par = (parallel * k) / ((performance.now() - t0) / 1000);
    // Let the watchers finish checking what was stored, then charge it.
    await sleep(1000);
    return { serial, parallel: par, serialCpuUs, parallelCpuUs: mark().benchUs / (parallel * k) };
  } finally {
    for (const a of list) a.decisions.stop();
    await Promise.all(list.map((a) => a.nc.close()));
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
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
