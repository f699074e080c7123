/**
 * The team relay benchmark: `npm run bench:team` (or `node dist/bench-team.js`), options --quick,
 * --json, --connections N, --only PART. Loopback only; every wait is bounded; it stops by itself
 * (a watchdog ends it after 15 minutes, 45 with the NATS part). STRATA_BENCH_RELAY_PROF=DIR writes a CPU profile of the relay.
 *
 * 1. Propagation, activate → applied on every peer, in a star around one relay:
 *    - 2 agents: real agents (`strata agent`, no views) joined to a real `strata relay`; "applied"
 *      is the peer's control socket announcing a status whose active set holds the layer.
 *    - 10 and 100 agents: transport+state agents (a TeamNode and a TeamState each, all in this
 *      process, no FUSE, no persistence); "applied" is the peer's registers holding the decision.
 *    Reported per decision: the time until the LAST peer applied it (p50, p99), and per peer.
 * 2. Deliveries per second: one publisher sends a burst of events (5 rounds) through the relay to
 *    100 light subscribers (real handshake, then they only count frames); deliveries = event
 *    frames received by subscribers / elapsed time (the frames the relay sent, counted in its
 *    process, are reported beside it). The relay's per-connection rate limit (500 frames/s,
 *    burst 2000 by default) would cut the publisher off after 2000 frames: this run raises it.
 * 3. Memory per connection: RSS of the relay process (its own child) after gc, before and after N
 *    authenticated connections that each announce their presence as agents do (every presence is
 *    forwarded to everyone: about N² frames), then again with N connections that send nothing.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { ChildProcess, execFile, fork, spawn } from 'child_process';
import { TeamNode } from '../daemon/team/node';
import { NodeLimits } from '../daemon/team/links';
import { TeamState } from '../daemon/team/state';
import { HlcClock } from '../daemon/team/hlc';
import { Identity } from '../daemon/team/identity';
import { deriveKey } from '../daemon/team/auth';
import { digestLayerDir } from '../daemon/team/digest';
import { AgentClient } from '../shared/client';
import { socketPath } from '../shared/paths';
import { Hlc, StateEvent } from '../protocol';
import { LightPeer, RelayRequest, RelayStats, eventFrame, relayChild } from './team-peer';
import { NatsPropagation, decisionsPerSecond, fanoutNats, memoryNats, natsAvailable, propagationNats, startNats } from './team-nats';

const HELP = `usage: npm run bench:team -- [--quick] [--json] [--connections N]
  --quick          fewer trials, 300 connections (a smoke run, not for the record)
  --json           print exactly one JSON object on stdout (progress goes to stderr)
  --connections N  connections for the memory measurement (default 1000)
  --only PART      run one part: propagation, deliveries, memory or nats (NATS JetStream, bench/team-nats.ts)
  --agents LIST    NATS propagation team sizes (default 10,100,1000)
  --watchers LIST  NATS fan-out to plain watchers (default 100,1000,10000)
`;

const TEAM = 'bench';
const SECRET = Buffer.from('strata team relay benchmark secret');
const KEY = deriveKey(SECRET, TEAM);

function log(msg: string): void {
  process.stderr.write(`[bench:team] ${msg}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const r2 = (x: number) => Math.round(x * 100) / 100;

// ---- children: exactly the processes this bench started, ended by their pid ---------------------------

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];

function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

async function runCleanups(): Promise<void> {
  for (const f of cleanups.splice(0).reverse()) await f().catch((e) => log(`cleanup: ${(e as Error).message}`));
  killChildren();
}

// ---- the relay process ------------------------------------------------------------------------------

class RelayProc {
  private readonly child: ChildProcess;
  private waiting: ((m: unknown) => void)[] = [];
  port = 0;

  constructor() {
    this.child = fork(__filename, ['--relay-child'], {
      execArgv: [
        '--expose-gc',
        ...(process.env.STRATA_BENCH_RELAY_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.STRATA_BENCH_RELAY_PROF}`] : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(this.child);
    this.child.on('message', (m) => this.waiting.shift()?.(m));
    this.child.on('exit', () => children.delete(this.child));
  }

  private ask<T>(req: RelayRequest): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`relay did not answer ${req.cmd} in 60 s`)), 60000);
      this.waiting.push((m) => {
        clearTimeout(t);
        const e = (m as { error?: string }).error;
        if (e) reject(new Error(`relay: ${e}`));
        else resolve(m as T);
      });
      this.child.send(req);
    });
  }

  async start(given: Partial<NodeLimits>): Promise<RelayStats> {
    // Every simulated agent connects from 127.0.0.1, 50 at a time: a relay's per-address share of
    // pending handshakes (16, against floods) would reset most of them.
    const limits = { maxPending: 1024, maxPendingPerAddress: 1024, ...given };
    const s = await this.ask<RelayStats>({ cmd: 'start', team: TEAM, key: KEY.toString('hex'), limits });
    this.port = s.port;
    return s;
  }

  stats(gc = false): Promise<RelayStats> {
    return this.ask<RelayStats>({ cmd: 'stats', gc });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await this.ask<RelayStats>({ cmd: 'stop' }).catch(() => {});
    await Promise.race([new Promise((r) => this.child.once('exit', r)), sleep(3000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

// ---- propagation with transport+state agents ---------------------------------------------------------

interface Propagation {
  agents: number;
  kind: string;
  decisions: number;
  /** Until the last peer applied (ms). */
  all: number[];
  /** Each peer separately (ms). */
  each: number[];
}

async function propagationNodes(n: number, trials: number): Promise<Propagation> {
  const relay = new RelayProc();
  cleanups.push(() => relay.stop());
  await relay.start({ maxPeers: n + 16 });
  const KEYNAME = 'layer:bench';
  let cur: { tag: Hlc; t0: number; got: boolean[]; left: number; each: number[]; done: () => void } | null = null;
  const nodes: { node: TeamNode; state: TeamState }[] = [];
  for (let i = 0; i < n; i++) {
    const identity = Identity.generate();
    const id = identity.id;
    const state = new TeamState(id, new HlcClock(id), { sign: (ev) => identity.signEvent(TEAM, ev) });
    const node = new TeamNode({
      identity,
      team: TEAM,
      key: KEY,
      state,
      log: () => {},
      connect: [relay.url],
      hooks: {
        presence: () => ({ user: id, host: 'bench', active: [], held: [], applied: state.seenVector(), busy: [], has: {} }),
        stateChanged: () => {
          const c = cur;
          if (!c || c.got[i]) return;
          const r = state.registers.get(KEYNAME);
          if (!r || r.tag.wall !== c.tag.wall || r.tag.logical !== c.tag.logical || r.tag.agent !== c.tag.agent) return;
          c.got[i] = true;
          c.each.push(performance.now() - c.t0);
          if (--c.left === 0) c.done();
        },
      },
    });
    nodes.push({ node, state });
  }
  cleanups.push(async () => {
    await Promise.all(nodes.map((x) => x.node.stop()));
  });
  // Join in batches: the relay admits at most 64 unauthenticated connections at once.
  for (let i = 0; i < n; i += 25) {
    const batch = nodes.slice(i, i + 25);
    await Promise.all(batch.map((x) => x.node.start()));
    await until(`agents ${i}..${i + batch.length - 1} to connect`, () => batch.every((x) => x.node.connectedAgents().length > 0), 30000);
  }
  await until('every agent to see every other', () => nodes.every((x) => x.node.presences.size >= n), 60000);
  await sleep(500);

  const all: number[] = [];
  const each: number[] = [];
  for (let t = 0; t < trials; t++) {
    const origin = nodes[t % n];
    const r = origin.state.registers.get(KEYNAME);
    const active = !(r && 'active' in r.value && r.value.active);
    const got = nodes.map((_, i) => i === t % n);
    const t0 = performance.now();
    let done!: () => void;
    const finished = new Promise<void>((res) => (done = res));
    cur = { tag: { wall: 0, logical: 0, agent: '' }, t0, got, left: n - 1, each, done };
    const ev = origin.state.local([{ key: KEYNAME, value: { active } }], 'bench', 'bench');
    origin.node.publish(ev);
    cur.tag = ev.tag; // frames leave on later ticks: nothing can have arrived yet
    const timeout = sleep(10000).then(() => 'timeout');
    if ((await Promise.race([finished, timeout])) === 'timeout') throw new Error(`decision ${t} did not reach all ${n - 1} peers in 10 s`);
    all.push(performance.now() - t0);
    cur = null;
    await sleep(2 + Math.random() * 8);
  }
  await Promise.all(nodes.map((x) => x.node.stop()));
  await relay.stop();
  return { agents: n, kind: 'transport+state', decisions: trials, all, each };
}

// ---- propagation with two real agents --------------------------------------------------------------------

function cliPath(): string {
  const p = path.join(__dirname, 'cli.js');
  if (!fs.existsSync(p) || !fs.existsSync(path.join(__dirname, 'agent.js')))
    throw new Error(`${p} or agent.js is missing: run "node esbuild.mjs" first`);
  return p;
}

function cli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cliPath(), ...args], { env, timeout: 60000 }, (e, stdout, stderr) => {
      if (e) reject(new Error(`strata ${args.join(' ')}: ${String(stderr).trim() || e.message}`));
      else resolve(String(stdout));
    });
  });
}

async function propagationRealAgents(trials: number): Promise<Propagation> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-team-'));
  cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
  const secret = path.join(dir, 'team.secret');
  fs.writeFileSync(secret, SECRET.toString() + '\n', { mode: 0o600 });
  for (const l of ['node18', 'node20']) {
    fs.mkdirSync(path.join(dir, 'src', l, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', l, 'bin', 'node'), `#!/bin/sh\necho ${l}\n`, { mode: 0o755 });
  }
  // The real relay: `strata relay`, in its own process.
  const relay = spawn(process.execPath, [cliPath(), 'relay', '--listen', '127.0.0.1:0', '--secret-file', secret, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(relay);
  relay.on('exit', () => children.delete(relay));
  cleanups.push(async () => void relay.kill('SIGTERM'));
  let out = '';
  relay.stdout!.on('data', (d) => (out += String(d)));
  relay.stderr!.resume();
  await until('the relay to print its address', () => /"url":\s*"[^"]+"/.test(out) || relay.exitCode !== null, 20000);
  const url = /"url":\s*"([^"]+)"/.exec(out)?.[1];
  if (!url) throw new Error('strata relay exited before printing its address');

  const homes = ['a', 'b'].map((x) => path.join(dir, x, 'home'));
  const envs = homes.map((home) => ({ ...process.env, STRATA_HOME: home }));
  for (const env of envs) {
    cleanups.push(async () => void (await cli(env, 'agent', 'stop').catch(() => '')));
    for (const l of ['node18', 'node20']) await cli(env, 'layer', 'create', l, '--from', path.join(dir, 'src', l), '--version', l.slice(4));
  }
  const layers: Record<string, { digest: string }> = {};
  for (const l of ['node18', 'node20']) layers[l] = { digest: await digestLayerDir(path.join(homes[0], 'layers', l)) };
  const teamFile = path.join(dir, 'strata.team.json');
  fs.writeFileSync(
    teamFile,
    JSON.stringify({ format: 1, team: TEAM, relays: [url], layers, defaults: [], slots: { node: ['node18', 'node20'] } }),
  );
  for (const [i, env] of envs.entries())
    await cli(env, 'team', 'join', url, '--secret-file', secret, '--team-file', teamFile, '--name', `bench${i}`);

  const [a, b] = await Promise.all(
    homes.map(async (home, i) => {
      const c = new AgentClient(socketPath(home, envs[i]));
      await c.connect();
      return c;
    }),
  );
  cleanups.push(async () => {
    a.close();
    b.close();
  });
  await b.call('subscribe', {});
  let want: string | null = null;
  let t0 = 0;
  let arrived: ((ms: number) => void) | null = null;
  b.onEvent = (e) => {
    if ((e as StateEvent).event !== 'state' || !want || !arrived) return;
    if ((e as StateEvent).status.active.includes(want)) {
      const f = arrived;
      arrived = null;
      f(performance.now() - t0);
    }
  };
  for (let i = 0; i < 100; i++) {
    const st = await a.call('team.status', {});
    if (st.peers?.some((p) => p.connection === 'connected' || p.connection === 'via-relay')) break;
    await sleep(100);
  }
  const all: number[] = [];
  for (let t = 0; t < trials; t++) {
    const layer = t % 2 === 0 ? 'node20' : 'node18';
    const got = new Promise<number>((res) => (arrived = res));
    want = layer;
    t0 = performance.now();
    await a.call('activate', { names: [layer] });
    const ms = await Promise.race([got, sleep(10000).then(() => -1)]);
    if (ms < 0) throw new Error(`agent B did not apply ${layer} within 10 s (decision ${t})`);
    all.push(ms);
    want = null;
    await sleep(5 + Math.random() * 10);
  }
  return { agents: 2, kind: 'real agents (strata agent + strata relay, no views)', decisions: trials, all, each: all };
}

// ---- deliveries per second --------------------------------------------------------------------------------

async function deliveries(
  subscribers: number,
  burst: number,
  rounds: number,
): Promise<{
  perSecond: number[];
  relayPerSecond: number[];
  relayCpuUs: number[];
  benchCpuUs: number[];
  subscribers: number;
  burst: number;
}> {
  const relay = new RelayProc();
  cleanups.push(() => relay.stop());
  // A burst would trip the default per-connection rate limit (500/s, burst 2000): raise it here.
  await relay.start({ maxPeers: subscribers + 16, rate: 1e9, burst: 1e9 });
  const subs: LightPeer[] = [];
  for (let i = 0; i < subscribers; i += 50) {
    const batch = Array.from({ length: Math.min(50, subscribers - i) }, (_, j) => new LightPeer(relay.url, TEAM, KEY, `sub${i + j}`));
    await Promise.all(batch.map((p) => p.ready));
    subs.push(...batch);
  }
  const pub = new LightPeer(relay.url, TEAM, KEY, 'publisher');
  await pub.ready;
  cleanups.push(async () => {
    for (const p of [...subs, pub]) p.close();
  });
  await sleep(300);
  const perSecond: number[] = [];
  const relayPerSecond: number[] = [];
  // CPU time per delivery, of the relay and of this process (publisher and subscribers): less
  // sensitive than the rate to what else the shared machine runs.
  const relayCpuUs: number[] = [];
  const benchCpuUs: number[] = [];
  let seq = 0;
  for (let r = 0; r < rounds; r++) {
    const base = subs.map((s) => s.events);
    const frames = Array.from({ length: burst }, () => eventFrame(pub.identity, TEAM, ++seq));
    const before = await relay.stats();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const f of frames) pub.send(f);
    await until(`${subscribers} subscribers to receive ${burst} events`, () => subs.every((s, i) => s.events - base[i] >= burst), 120000);
    const t1 = Math.max(...subs.map((s) => s.lastEventAt));
    const cpu1 = process.cpuUsage(cpu0);
    const after = await relay.stats();
    perSecond.push((subscribers * burst) / ((t1 - t0) / 1000));
    relayPerSecond.push((after.deliveries - before.deliveries) / ((t1 - t0) / 1000));
    relayCpuUs.push((after.cpuUs - before.cpuUs) / (subscribers * burst));
    benchCpuUs.push((cpu1.user + cpu1.system) / (subscribers * burst));
    log(`  round ${r + 1}: ${subscribers}×${burst} events in ${(t1 - t0).toFixed(0)} ms`);
    await sleep(500);
  }
  for (const p of [...subs, pub]) p.close();
  await relay.stop();
  return { perSecond, relayPerSecond, relayCpuUs, benchCpuUs, subscribers, burst };
}

// ---- memory per connection -----------------------------------------------------------------------------

async function memory(
  connections: number,
  presence: boolean,
): Promise<{
  connections: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
  heapTotalKb: number;
  externalKb: number;
  /** The young generation's growth, over N (not held by connections: bounded, and reused). */
  newSpaceKb: number;
  connectDeliveries: number;
}> {
  const relay = new RelayProc();
  cleanups.push(() => relay.stop());
  // Every connection's presence is kept (by default a relay remembers the 1024 heard most recently).
  await relay.start({ maxPeers: connections + 16, maxOrigins: connections + 64 });
  // Warm up the code paths (ws, handshake, JSON) so their one-time cost is not charged to connections.
  const warm = Array.from({ length: 20 }, (_, i) => new LightPeer(relay.url, TEAM, KEY, `warm${i}`, { presence: true }));
  await Promise.all(warm.map((p) => p.ready));
  for (const p of warm) p.close();
  await sleep(1000);
  const s0 = await relay.stats(true);
  const peers: LightPeer[] = [];
  cleanups.push(async () => {
    for (const p of peers) p.close();
  });
  for (let i = 0; i < connections; i += 50) {
    const batch = Array.from(
      { length: Math.min(50, connections - i) },
      (_, j) => new LightPeer(relay.url, TEAM, KEY, `peer${String(i + j).padStart(5, '0')}`, { presence }),
    );
    await Promise.all(batch.map((p) => p.ready));
    peers.push(...batch);
  }
  // Wait for the presence fan-out (each newcomer's presence goes to everyone) to drain.
  let last = -1;
  for (let i = 0; i < 600; i++) {
    const s = await relay.stats();
    if (s.deliveries === last && s.connected >= connections) break;
    last = s.deliveries;
    await sleep(500);
  }
  const s1 = await relay.stats(true);
  for (const p of peers) p.close();
  await relay.stop();
  return {
    connections,
    rssBefore: s0.rss,
    rssAfter: s1.rss,
    heapBefore: s0.heapUsed,
    heapAfter: s1.heapUsed,
    // Per connection: the V8 heap the process holds (used or not), and memory outside it.
    heapTotalKb: (s1.heapTotal - s0.heapTotal) / 1024 / connections,
    externalKb: (s1.external - s0.external) / 1024 / connections,
    newSpaceKb: (s1.newSpace - s0.newSpace) / 1024 / connections,
    connectDeliveries: s1.deliveries - s0.deliveries,
  };
}

// ---- machine ------------------------------------------------------------------------------------------------

function machine(): Record<string, unknown> {
  let distro: string = os.platform();
  try {
    distro = /PRETTY_NAME="?([^"\n]+)"?/.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? distro;
  } catch {
    /* not Linux */
  }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memory_gib: r2(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    os: distro,
    node: process.version,
    hostname_hash: crypto.createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8),
  };
}

// ---- main ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(HELP);
    return;
  }
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
  const ci = argv.indexOf('--connections');
  const connections = ci >= 0 ? Number(argv[ci + 1]) : quick ? 300 : 1000;
  if (!Number.isSafeInteger(connections) || connections < 1) throw new Error('--connections needs a positive integer');
  const sizesOf = (flag: string, dflt: number[]) => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const xs = argv[i + 1].split(',').map(Number);
    if (!xs.every((x) => Number.isSafeInteger(x) && x > 1)) throw new Error(`${flag} needs a comma-separated list of counts above 1`);
    return xs;
  };
  const agentSizes = sizesOf('--agents', quick ? [10, 100] : [10, 100, 1000]);
  const watcherSizes = sizesOf('--watchers', quick ? [100] : [100, 1000, 10000]);
  const oi = argv.indexOf('--only');
  const only = oi >= 0 ? argv[oi + 1] : null;
  if (only !== null && !['propagation', 'deliveries', 'memory', 'nats'].includes(only))
    throw new Error('--only takes propagation, deliveries, memory or nats');
  const doing = (part: string) => only === null || only === part;
  // The NATS part at 1,000 agents and 10,000 watchers takes long on 2 shared cores.
  const minutes = doing('nats') && !quick ? 45 : 15;
  const watchdog = setTimeout(
    () => {
      log(`gave up after ${minutes} minutes`);
      void runCleanups().finally(() => process.exit(2));
    },
    minutes * 60 * 1000,
  );
  watchdog.unref();
  const started = Date.now();
  const mach = machine();

  const props: Propagation[] = [];
  if (doing('propagation')) {
    log('propagation: 2 real agents');
    try {
      props.push(await propagationRealAgents(quick ? 40 : 200));
    } catch (e) {
      log(`real agents unavailable (${(e as Error).message}); measuring 2 transport+state agents instead`);
      await runCleanups();
      props.push(await propagationNodes(2, quick ? 40 : 200));
    }
    await runCleanups();
    for (const n of [10, 100]) {
      log(`propagation: ${n} transport+state agents`);
      props.push(await propagationNodes(n, quick ? 40 : n === 100 ? 200 : 300));
      await runCleanups();
    }
  }
  let d: Awaited<ReturnType<typeof deliveries>> | null = null;
  if (doing('deliveries')) {
    const subs = 100;
    const burst = quick ? 1000 : 3000;
    log(`deliveries: a burst of ${burst} events to ${subs} subscribers, 5 rounds`);
    d = await deliveries(subs, burst, 5);
    await runCleanups();
  }
  let m: Awaited<ReturnType<typeof memory>> | null = null;
  let m0: Awaited<ReturnType<typeof memory>> | null = null;
  if (doing('memory')) {
    log(`memory: ${connections} connections that announce their presence`);
    m = await memory(connections, true);
    await runCleanups();
    log(`memory: ${connections} connections that stay silent`);
    m0 = await memory(connections, false);
    await runCleanups();
  }

  let nats: Awaited<ReturnType<typeof natsPart>> | null = null;
  if (doing('nats')) {
    if (natsAvailable()) nats = await natsPart(quick, connections, agentSizes, watcherSizes);
    else log('nats: nats-server is not on PATH (apt-get install nats-server): skipped');
  }

  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: mach,
    command: `node dist/bench-team.js ${argv.join(' ')}`.trim(),
    quick,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  for (const x of props) {
    out[`propagation_p50_ms_${x.agents}`] = r2(pct(x.all, 50));
    out[`propagation_p99_ms_${x.agents}`] = r2(pct(x.all, 99));
    out[`propagation_peer_p50_ms_${x.agents}`] = r2(pct(x.each, 50));
    out[`propagation_peer_p99_ms_${x.agents}`] = r2(pct(x.each, 99));
    out[`propagation_decisions_${x.agents}`] = x.decisions;
    out[`propagation_kind_${x.agents}`] = x.kind;
  }
  if (d) {
    Object.assign(out, {
      deliveries_per_s: Math.round(pct(d.perSecond, 50)),
      deliveries_per_s_rounds: d.perSecond.map(Math.round),
      relay_sends_per_s: Math.round(pct(d.relayPerSecond, 50)),
      relay_cpu_us_per_delivery: r2(pct(d.relayCpuUs, 50)),
      bench_cpu_us_per_delivery: r2(pct(d.benchCpuUs, 50)),
      load_average: os.loadavg().map(r2),
      deliveries_subscribers: d.subscribers,
      deliveries_burst: d.burst,
      deliveries_limits: 'relay rate and burst raised to 1e9 frames (default 500/s, burst 2000)',
    });
  }
  if (m) {
    Object.assign(out, {
      kb_per_connection: r2((m.rssAfter - m.rssBefore) / 1024 / m.connections),
      heap_kb_per_connection: r2((m.heapAfter - m.heapBefore) / 1024 / m.connections),
      heap_total_kb_per_connection: r2(m.heapTotalKb),
      external_kb_per_connection: r2(m.externalKb),
      young_generation_kb_per_connection: r2(m.newSpaceKb),
      kb_per_connection_without_young_generation: r2((m.rssAfter - m.rssBefore) / 1024 / m.connections - m.newSpaceKb),
      young_generation_kb_per_connection_silent: m0 ? r2(m0.newSpaceKb) : null,
      heap_total_kb_per_connection_silent: m0 ? r2(m0.heapTotalKb) : null,
      memory_load_average: os.loadavg().map(r2),
      connections: m.connections,
      relay_rss_mb_before: r2(m.rssBefore / 2 ** 20),
      relay_rss_mb_after: r2(m.rssAfter / 2 ** 20),
      presence_frames_on_connect: m.connectDeliveries,
      kb_per_connection_silent: m0 ? r2((m0.rssAfter - m0.rssBefore) / 1024 / m0.connections) : null,
      heap_kb_per_connection_silent: m0 ? r2((m0.heapAfter - m0.heapBefore) / 1024 / m0.connections) : null,
    });
  }
  if (nats) {
    out.nats_server = nats.version;
    for (const x of nats.props) {
      const k = `${x.servers > 1 ? 'cluster_' : ''}${x.agents}`;
      out[`nats_propagation_p50_ms_${k}`] = r2(pct(x.all, 50));
      out[`nats_propagation_p99_ms_${k}`] = r2(pct(x.all, 99));
      out[`nats_propagation_peer_p99_ms_${k}`] = r2(pct(x.each, 99));
      out[`nats_propagation_decisions_${k}`] = x.decisions;
      out[`nats_agents_cpu_us_per_delivery_${k}`] = r2(x.benchUsPerDelivery);
      out[`nats_server_cpu_us_per_delivery_${k}`] = r2(x.serverUsPerDelivery);
      out[`nats_propagation_load_${k}`] = x.load.map(r2);
    }
    for (const f of nats.fanout) {
      out[`nats_fanout_p50_ms_${f.agents}`] = r2(pct(f.ms, 50));
      out[`nats_fanout_p99_ms_${f.agents}`] = r2(pct(f.ms, 99));
      out[`nats_fanout_watchers_cpu_us_per_delivery_${f.agents}`] = r2(f.benchUsPerDelivery);
      out[`nats_fanout_server_cpu_us_per_delivery_${f.agents}`] = r2(f.serverUsPerDelivery);
      out[`nats_fanout_server_rss_mb_${f.agents}`] = r2(f.rssMb);
      out[`nats_fanout_load_${f.agents}`] = f.load.map(r2);
    }
    Object.assign(out, {
      nats_decisions_per_s_serial: Math.round(nats.rate.serial),
      nats_decisions_per_s_10_writers: Math.round(nats.rate.parallel),
      nats_decisions_load: nats.rate.load.map(r2),
      nats_decisions_cpu_us_serial: r2(nats.rate.serialCpuUs),
      nats_decisions_cpu_us_10_writers: r2(nats.rate.parallelCpuUs),
      nats_cluster_decisions_cpu_us_10_writers: r2(nats.clusterRate.parallelCpuUs),
      nats_cluster_decisions_per_s_serial: Math.round(nats.clusterRate.serial),
      nats_cluster_decisions_per_s_10_writers: Math.round(nats.clusterRate.parallel),
      nats_cluster_decisions_load: nats.clusterRate.load.map(r2),
      nats_kb_per_connection: r2(nats.mem.kbPerConnection),
      nats_connections: nats.mem.connections,
      nats_rss_mb_before: r2(nats.mem.rssBeforeMb),
      nats_rss_mb_after: r2(nats.mem.rssAfterMb),
    });
  }
  out.aims = { propagation_p99_ms_100: 50, deliveries_per_s: 100000, kb_per_connection: 20 };
  if (json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  const lines: string[] = [];
  lines.push(`Strata team relay benchmark, ${out.date}`);
  lines.push(`machine: ${mach.cpu}, ${mach.cores} cores, kernel ${mach.kernel}, ${mach.os}, ${mach.memory_gib} GiB, node ${mach.node}`);
  if (props.length) {
    lines.push('');
    lines.push('| agents | kind | decisions | all peers p50 | all peers p99 | per peer p50 | per peer p99 |');
    lines.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const x of props) {
      lines.push(
        `| ${x.agents} | ${x.kind} | ${x.decisions} | ${r2(pct(x.all, 50))} ms | ${r2(pct(x.all, 99))} ms | ${r2(pct(x.each, 50))} ms | ${r2(pct(x.each, 99))} ms |`,
      );
    }
  }
  lines.push('');
  if (d) {
    lines.push(
      `deliveries: ${out.deliveries_per_s}/s median of ${d.perSecond.length} rounds (${d.perSecond.map(Math.round).join(', ')}), ` +
        `${d.subscribers} subscribers × ${d.burst} events; relay sends ${out.relay_sends_per_s}/s; rate limit raised; ` +
        `CPU per delivery: relay ${out.relay_cpu_us_per_delivery} µs, publisher and subscribers ${out.bench_cpu_us_per_delivery} µs`,
    );
  }
  if (m) {
    lines.push(
      `memory: ${out.kb_per_connection} KB RSS per connection (${m.connections} connections, relay RSS ${out.relay_rss_mb_before} → ${out.relay_rss_mb_after} MB; ` +
        `heap ${out.heap_kb_per_connection} KB/connection used, ${out.heap_total_kb_per_connection} KB held, of which the young generation's growth ` +
        `${out.young_generation_kb_per_connection} KB (RSS without it: ${out.kb_per_connection_without_young_generation} KB); external ${out.external_kb_per_connection} KB; ` +
        `${m.connectDeliveries} presence frames forwarded while they joined); ` +
        `connections that send nothing: ${out.kb_per_connection_silent} KB RSS, ${out.heap_kb_per_connection_silent} KB heap used, ` +
        `${out.heap_total_kb_per_connection_silent} KB held (young generation ${out.young_generation_kb_per_connection_silent} KB) each; load ${(out.memory_load_average as number[]).join(' ')}`,
    );
  }
  if (nats) {
    lines.push('');
    lines.push(`NATS JetStream (nats-server ${nats.version}):`);
    lines.push(
      '| servers | agents | decisions | all agents p50 | all agents p99 | per agent p50 | per agent p99 | CPU/delivery agents | CPU/delivery server | load |',
    );
    lines.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const x of nats.props) {
      lines.push(
        `| ${x.servers} | ${x.agents} | ${x.decisions} | ${r2(pct(x.all, 50))} ms | ${r2(pct(x.all, 99))} ms | ${r2(pct(x.each, 50))} ms | ` +
          `${r2(pct(x.each, 99))} ms | ${r2(x.benchUsPerDelivery)} µs | ${r2(x.serverUsPerDelivery)} µs | ${x.load.map(r2).join(' ')} |`,
      );
    }
    for (const f of nats.fanout) {
      lines.push(
        f.ms.length
          ? `server fan-out alone (a put until ${f.agents} plain watchers have it): p50 ${r2(pct(f.ms, 50))} ms, p99 ${r2(pct(f.ms, 99))} ms; ` +
              `CPU per delivery: watchers ${r2(f.benchUsPerDelivery)} µs, server ${r2(f.serverUsPerDelivery)} µs; server RSS ${r2(f.rssMb)} MB; ` +
              `connecting took ${r2(f.setupS)} s; load ${f.load.map(r2).join(' ')}`
          : `server fan-out to ${f.agents} plain watchers: not measured (see the log); server RSS ${r2(f.rssMb)} MB`,
      );
    }
    lines.push(
      `decisions stored through one server: ${out.nats_decisions_per_s_serial}/s one writer back to back, ${out.nats_decisions_per_s_10_writers}/s 10 writers ` +
        `(this process's CPU per decision: ${out.nats_decisions_cpu_us_serial} µs alone, ${out.nats_decisions_cpu_us_10_writers} µs with 10 agents checking each); ` +
        `through a 3-node cluster (replicas 3): ${out.nats_cluster_decisions_per_s_serial}/s, ${out.nats_cluster_decisions_per_s_10_writers}/s; ` +
        `server memory: ${out.nats_kb_per_connection} KB RSS per agent connection (${nats.mem.connections} connections each watching both buckets, ` +
        `${out.nats_rss_mb_before} → ${out.nats_rss_mb_after} MB)`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/**
 * NATS JetStream beside the relay (bench/team-nats.ts): propagation, the server's fan-out to plain
 * watchers (up to `watchers`), decisions per second and propagation through one server and a
 * 3-node cluster, server memory per connection. CPU time per delivery beside each propagation.
 */
/** Each figure as soon as it is measured: a run stopped later still leaves it in the log. */
function logProp(x: NatsPropagation): void {
  log(
    `  p50 ${r2(pct(x.all, 50))} ms, p99 ${r2(pct(x.all, 99))} ms; CPU/delivery agents ${r2(x.benchUsPerDelivery)} µs, ` +
      `server ${r2(x.serverUsPerDelivery)} µs; load ${os.loadavg().map(r2).join(' ')}`,
  );
}

async function natsPart(quick: boolean, connections: number, sizes: number[], watchers: number[]) {
  const srv = await startNats(log);
  cleanups.push(() => srv.stop());
  const props: (NatsPropagation & { servers: number; load: number[] })[] = [];
  for (const n of sizes) {
    log(`nats: propagation to ${n} agents`);
    props.push({ ...(await propagationNats(srv, n, quick ? 40 : n >= 1000 ? 50 : 200)), servers: 1, load: os.loadavg() });
    logProp(props[props.length - 1]);
  }
  // Before the fan-out runs: a server that held 10,000 watchers keeps that memory.
  log(`nats: memory for ${connections} agent connections`);
  const mem = await memoryNats(srv, connections);
  const fanout: (Awaited<ReturnType<typeof fanoutNats>> & { agents: number; load: number[] })[] = [];
  for (const n of watchers) {
    log(`nats: server fan-out to ${n} plain watchers`);
    try {
      fanout.push({ ...(await fanoutNats(srv, n, quick ? 40 : n >= 10000 ? 30 : 100, log)), agents: n, load: os.loadavg() });
      const f = fanout[fanout.length - 1];
      log(
        `  p50 ${r2(pct(f.ms, 50))} ms, p99 ${r2(pct(f.ms, 99))} ms, CPU/delivery watchers ${r2(f.benchUsPerDelivery)} µs, server ${r2(f.serverUsPerDelivery)} µs`,
      );
    } catch (e) {
      log(`nats: ${n} watchers: ${(e as Error).message}`);
      fanout.push({
        ms: [],
        benchUsPerDelivery: NaN,
        serverUsPerDelivery: NaN,
        rssMb: srv.rssKb() / 1024,
        setupS: NaN,
        agents: n,
        load: os.loadavg(),
      });
    }
  }
  log('nats: decisions per second, one server');
  const rate = { ...(await decisionsPerSecond(srv, quick ? 300 : 2000, 10)), load: os.loadavg() };
  log(
    `  ${Math.round(rate.serial)}/s one writer, ${Math.round(rate.parallel)}/s 10 writers (CPU per decision ${r2(rate.parallelCpuUs)} µs)`,
  );
  await runCleanups();
  log('nats: a 3-node cluster (replicas 3)');
  const cl = await startNats(log, 3);
  cleanups.push(() => cl.stop());
  const clusterRate = { ...(await decisionsPerSecond(cl, quick ? 300 : 1000, 10)), load: os.loadavg() };
  log(
    `  ${Math.round(clusterRate.serial)}/s one writer, ${Math.round(clusterRate.parallel)}/s 10 writers (CPU per decision ${r2(clusterRate.parallelCpuUs)} µs)`,
  );
  const n = quick ? 10 : 100;
  log(`nats: propagation to ${n} agents through the cluster`);
  props.push({ ...(await propagationNats(cl, n, quick ? 40 : 200)), servers: 3, load: os.loadavg() });
  logProp(props[props.length - 1]);
  await runCleanups();
  return { version: srv.version, props, fanout, rate, clusterRate, mem };
}

if (process.argv.includes('--relay-child')) {
  relayChild();
} else {
  const onSignal = () => void runCleanups().finally(() => process.exit(130));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', (e) => {
    log(`uncaught: ${e.stack ?? e}`);
    void runCleanups().finally(() => process.exit(1));
  });
  main()
    .then(() => runCleanups())
    .then(() => process.exit(0))
    .catch(async (e) => {
      log(`failed: ${(e as Error).stack ?? e}`);
      await runCleanups();
      process.exit(1);
    });
}
