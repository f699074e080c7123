/**
 * The file system benchmark: `npm run bench` (or `node dist/bench.js`), options --quick, --json.
 *
 * In one run and side by side: the native directory, kernel overlayfs, fuse-overlayfs,
 * unionfs-fuse and a Strata view (served by a separate agent process, started through the real
 * CLI with a private STRATA_HOME), on the same data set: warm stat of every file of a git
 * repository, find, git status (warm and first-after-mount), find first-after-mount, sequential
 * read and write of a large file, exec of small and large binaries, and the latency of a layer
 * switch over the control socket with a check for stale reads.
 *
 * Ratios are time ratios (system ms / native ms): lower is better. Nothing here asserts a time.
 * See docs/benchmarks.md.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { socketPath } from '../shared/paths';
import {
  BASE_RUN, BASE_VERSION, LAYER_RUN, LAYER_VERSION, gitEnv, makeData, makeToolsLayerSource, refreshIndex,
} from './dataset';
import { FuseOverlayfs, KernelOverlay, LABELS, Peer, Strata, SystemKey, Target, UnionfsFuse } from './systems';
import { Control, measureSwitch, runScript } from './switch';
import { Timer, cleanupAll, hasCommand, isRoot, log, median, mountsUnder, must, onCleanup, round, run } from './util';

const HELP = `usage: npm run bench -- [--quick] [--json] [--dir PARENT]

  --quick        2k files, 32 MiB, fewer repetitions (well under a minute)
  --json         print exactly one JSON object on stdout (progress goes to stderr)
  --dir PARENT   where to create the temporary directory (default: ${os.tmpdir()});
                 it must be a local file system that kernel overlayfs accepts as upper dir
`;

interface Plan {
  files: number;
  bigMiB: number;
  metaRuns: number;
  metaWarmup: number;
  gitRuns: number;
  coldReps: number;
  readRuns: number;
  writeRuns: number;
  execRuns: number;
  execWarmup: number;
  nodeRuns: number;
  switchIters: number;
  treeSwitchIters: number;
}

const FULL: Plan = {
  files: 10000, bigMiB: 256, metaRuns: 10, metaWarmup: 2, gitRuns: 10, coldReps: 3, readRuns: 5, writeRuns: 7,
  execRuns: 200, execWarmup: 20, nodeRuns: 30, switchIters: 50, treeSwitchIters: 10,
};
const QUICK: Plan = {
  files: 2000, bigMiB: 32, metaRuns: 5, metaWarmup: 1, gitRuns: 5, coldReps: 1, readRuns: 3, writeRuns: 3,
  execRuns: 50, execWarmup: 5, nodeRuns: 10, switchIters: 20, treeSwitchIters: 4,
};

type MetricKey =
  | 'stat_warm' | 'find' | 'git_status_warm' | 'find_cold' | 'git_status_cold'
  | 'read' | 'write' | 'write_nosync' | 'exec' | 'exec_node';

const METRICS: { key: MetricKey; label: (p: Plan) => string }[] = [
  { key: 'stat_warm', label: (p) => `stat ${p.files} files (warm)` },
  { key: 'find', label: () => 'find tree -printf %s (warm)' },
  { key: 'git_status_warm', label: () => 'git status (warm)' },
  { key: 'find_cold', label: () => 'find, first after mount' },
  { key: 'git_status_cold', label: () => 'git status, first after mount' },
  { key: 'read', label: (p) => `cat ${p.bigMiB} MiB (warm)` },
  { key: 'write', label: (p) => `dd write ${p.bigMiB} MiB + fsync` },
  { key: 'write_nosync', label: (p) => `dd write ${p.bigMiB} MiB, no fsync` },
  { key: 'exec', label: () => 'exec bin/true' },
  { key: 'exec_node', label: () => 'exec bin/node --version' },
];

const SYSTEMS: SystemKey[] = ['native', 'overlayfs', 'fuse_overlayfs', 'unionfs_fuse', 'strata', 'strata_layer'];
const PEERS: SystemKey[] = ['overlayfs', 'fuse_overlayfs', 'unionfs_fuse'];
/** JSON key prefix per system; Strata's own ratios carry no prefix. */
const PREFIX: Record<SystemKey, string> = {
  native: 'native_', overlayfs: 'overlayfs_', fuse_overlayfs: 'fuse_overlayfs_', unionfs_fuse: 'unionfs_fuse_', strata: '', strata_layer: 'strata_layer_',
};

const RATIO_DEFINITION =
  'time ratios: system median ms / native median ms (for strata_vs_peers: strata ms / peer ms); lower is better; ' +
  'read_ratio <= 1.11 means read throughput >= 0.9x native';

type Table = Partial<Record<SystemKey, Partial<Record<MetricKey, number>>>>;

interface Args {
  quick: boolean;
  json: boolean;
  dir: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, json: false, dir: os.tmpdir() };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--quick') a.quick = true;
    else if (x === '--json') a.json = true;
    else if (x === '--dir') a.dir = path.resolve(argv[++i] ?? '');
    else if (x.startsWith('--dir=')) a.dir = path.resolve(x.slice(6));
    else if (x === '--help' || x === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument ${x}\n\n${HELP}`);
      process.exit(2);
    }
  }
  return a;
}

// ---- tools ---------------------------------------------------------------------------------------

interface Tools {
  hyperfine: boolean;
  fuseOverlayfs: boolean;
  unionfs: boolean;
  kernelOverlay: boolean;
}

/** Install missing comparison tools when root (apt-get); otherwise skip them with a note. */
async function ensureTools(notes: string[]): Promise<Tools> {
  const want: [keyof Tools, string, string][] = [
    ['hyperfine', 'hyperfine', 'hyperfine'],
    ['fuseOverlayfs', 'fuse-overlayfs', 'fuse-overlayfs'],
    ['unionfs', 'unionfs', 'unionfs-fuse'],
  ];
  const missing = want.filter(([, cmd]) => !hasCommand(cmd));
  if (missing.length && isRoot() && hasCommand('apt-get')) {
    const pkgs = missing.map(([, , pkg]) => pkg);
    log(`installing ${pkgs.join(', ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env });
    if (r.code !== 0) {
      await run('apt-get', ['update', '-qq'], { env });
      r = await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env });
    }
    if (r.code !== 0) notes.push(`apt-get install ${pkgs.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-1)[0]}`);
  }
  const t: Tools = {
    hyperfine: hasCommand('hyperfine'),
    fuseOverlayfs: hasCommand('fuse-overlayfs'),
    unionfs: hasCommand('unionfs'),
    kernelOverlay: isRoot(),
  };
  const why = isRoot() ? 'not installed and apt-get could not install it' : 'not installed, and installing needs root';
  if (!t.hyperfine) notes.push(`hyperfine: ${why}; runs are timed from Node instead (adds a few ms of spawn cost to every run)`);
  if (!t.fuseOverlayfs) notes.push(`fuse-overlayfs skipped: ${why}`);
  if (!t.unionfs) notes.push(`unionfs-fuse skipped: ${why}`);
  if (!t.kernelOverlay) notes.push('kernel overlayfs skipped: mounting it needs root');
  for (const n of notes) log(n);
  return t;
}

// ---- machine -------------------------------------------------------------------------------------

function machine(root: string): Record<string, unknown> {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    /* keep os.cpus() */
  }
  let distro = '';
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    /* unknown */
  }
  const fsType = spawnSync('findmnt', ['-no', 'FSTYPE', '-T', root], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  return {
    cpu,
    cores: os.cpus().length,
    kernel: os.release(),
    os: distro,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    fs: fsType,
    root: isRoot(),
  };
}

/** Which Strata was measured: commit, uncommitted changes under the daemon, shared code and protocol, addon build time. */
function revisionInfo(): { head: string; uncommitted: string[]; addon_built: string } {
  const repo = path.resolve(__dirname, '..');
  const git = (...a: string[]) => spawnSync('git', ['-c', 'safe.directory=*', '-C', repo, ...a], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const addon = path.join(repo, 'build', 'Release', 'strata_fuse.node');
  const revision = {
    head: git('rev-parse', '--short', 'HEAD') || 'unknown',
    uncommitted: git('status', '--porcelain', '--', 'daemon', 'shared', 'protocol', 'binding.gyp').split('\n').filter(Boolean).map((l) => l.replace(/^\s*\S+\s+/, '')),
    addon_built: fs.existsSync(addon) ? fs.statSync(addon).mtime.toISOString() : 'missing',
  };
  return revision;
}

// ---- measurement ---------------------------------------------------------------------------------

function fmtMs(x: number | undefined | null): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '-';
  if (x < 10) return x.toFixed(2);
  if (x < 100) return x.toFixed(1);
  return x.toFixed(0);
}

function fmtRatio(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '-' : x.toFixed(2);
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    return `<${(e as NodeJS.ErrnoException).code ?? 'error'}>`;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const plan = args.quick ? QUICK : FULL;
  const t0 = Date.now();
  const notes: string[] = [];
  const cli = path.join(__dirname, 'cli.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first with "node esbuild.mjs" (npm run bench does)`);
  const avail = await ensureTools(notes);

  fs.mkdirSync(args.dir, { recursive: true });
  const root = fs.mkdtempSync(path.join(args.dir, 'strata-bench-'));
  if (/\s/.test(root)) throw new Error(`the temporary directory ${root} contains white space; pick another --dir`);
  fs.chmodSync(root, 0o755);
  // Registered first, so it runs last: only once nothing is mounted below it any more.
  onCleanup('remove the temporary directory', () => {
    const left = mountsUnder(root);
    if (left.length) {
      process.stderr.write(`[bench] still mounted, so ${root} is kept: ${left.join(', ')}\n`);
      return;
    }
    fs.rmSync(root, { recursive: true, force: true });
  });
  const mach = machine(root);
  const rev = revisionInfo();
  // Other work on a shared machine shows up here: the 1-minute load average, sampled every 5 s.
  const load: number[] = [os.loadavg()[0]];
  const sampler = setInterval(() => load.push(os.loadavg()[0]), 5000);
  sampler.unref();
  log(`${args.quick ? 'quick' : 'full'} run in ${root} (${mach.cpu}, ${mach.cores} cores, kernel ${mach.kernel}, ${mach.fs})`);
  const timer = new Timer(avail.hyperfine, root);

  // ---- data --------------------------------------------------------------------------------------
  log(`creating the data set: git repository of ${plan.files} files, ${plan.bigMiB} MiB file, binaries`);
  const data = await makeData(path.join(root, 'data'), plan.files, plan.bigMiB, path.join(root, 'files.nul'));
  // Strata's base is a copy, so its pass-through writes never touch the peers' lower directory.
  const sbase = path.join(root, 'sbase');
  await must('cp', ['-a', data.dir, sbase]);
  await refreshIndex(path.join(sbase, 'tree'));
  const NEG = plan.switchIters * 2 + 4;
  fs.mkdirSync(path.join(sbase, 'tool', 'n'), { recursive: true });
  fs.writeFileSync(path.join(sbase, 'tool', 'n', '.keep'), '');
  const ltools = path.join(root, 'src-tools');
  makeToolsLayerSource(ltools);
  fs.mkdirSync(path.join(ltools, 'tool', 'n'), { recursive: true });
  for (let i = 0; i < NEG; i++) fs.writeFileSync(path.join(ltools, 'tool', 'n', `l${i}`), `layer-only ${i}\n`);
  const ltree = path.join(root, 'src-tree');
  fs.mkdirSync(ltree);
  await must('cp', ['-a', path.join(data.dir, 'tree'), path.join(ltree, 'tree')]);
  const nativeOut = path.join(root, 'native-out');
  fs.mkdirSync(nativeOut);

  // ---- systems -----------------------------------------------------------------------------------
  const targets: Target[] = [{
    key: 'native',
    tree: path.join(data.dir, 'tree'),
    big: path.join(data.dir, 'big.bin'),
    out: path.join(nativeOut, 'out.bin'),
    trueBin: path.join(data.dir, 'bin', 'true'),
    nodeBin: path.join(data.dir, 'bin', 'node'),
    remount: null,
  }];
  const peers: Peer[] = [];
  if (avail.kernelOverlay) peers.push(new KernelOverlay('overlayfs', path.join(root, 'overlayfs'), data.dir));
  if (avail.fuseOverlayfs) peers.push(new FuseOverlayfs('fuse_overlayfs', path.join(root, 'fuse-overlayfs'), data.dir));
  if (avail.unionfs) peers.push(new UnionfsFuse('unionfs_fuse', path.join(root, 'unionfs-fuse'), data.dir));
  for (const p of peers) {
    log(`mounting ${LABELS[p.key]} at ${p.mnt}`);
    await p.mount();
    targets.push(p.target());
  }
  const strata = new Strata(cli, path.join(root, 'strata'), sbase);
  await strata.setUp([
    { name: 'tools', from: ltools, map: [['/tool', 'tool']] },
    { name: 'tree', from: ltree, map: [['/mapped', 'tree']] },
  ]);
  log(`strata view of ${sbase} at ${strata.mnt}; agent pid ${strata.agentPid}; layers tools (/tool -> tool) and tree (/mapped -> tree) active`);
  const remountStrata = () => strata.remount();
  targets.push({
    key: 'strata',
    tree: path.join(strata.mnt, 'tree'),
    big: path.join(strata.mnt, 'big.bin'),
    out: path.join(strata.mnt, 'out.bin'),
    trueBin: path.join(strata.mnt, 'bin', 'true'),
    nodeBin: path.join(strata.mnt, 'bin', 'node'),
    remount: remountStrata,
  });
  targets.push({
    key: 'strata_layer',
    tree: path.join(strata.mnt, 'mapped'),
    big: null,
    out: null,
    trueBin: path.join(strata.mnt, 'tool', 'bin', 'true'),
    nodeBin: path.join(strata.mnt, 'tool', 'bin', 'node'),
    remount: remountStrata,
  });
  const present = new Set(targets.map((t) => t.key));

  // ---- workloads ---------------------------------------------------------------------------------
  const ms: Table = {};
  const raw: Partial<Record<SystemKey, Partial<Record<MetricKey, number[]>>>> = {};
  const record = (t: Target, m: MetricKey, times: number[]): void => {
    (raw[t.key] ??= {})[m] = times.map((x) => round(x, 3)!);
    (ms[t.key] ??= {})[m] = median(times);
    log(`${m.padEnd(16)} ${LABELS[t.key].padEnd(15)} ${fmtMs(median(times)).padStart(8)} ms  (median of ${times.length})`);
  };
  const genv = gitEnv();

  for (const t of targets) {
    // Untimed: every system must show a clean repository (first run also lets git refresh its index).
    await must('git', ['-C', t.tree, 'status', '--porcelain'], { env: genv });
    const dirty = (await must('git', ['-C', t.tree, 'status', '--porcelain'], { env: genv })).trim();
    if (dirty) notes.push(`${LABELS[t.key]}: git status is not clean: ${dirty.split('\n').slice(0, 3).join(' | ')}`);
  }

  /**
   * Time `argv(t)` on every target in rounds; each round rotates the order, so slow drift of a
   * shared machine hits every system alike. Warm-up runs come first and are not kept.
   */
  const interleaved = async (
    m: MetricKey,
    argv: (t: Target) => string[],
    o: { rounds: number; perRound: number; warmup: number; only?: (t: Target) => boolean; cwd?: (t: Target) => string; prepare?: (t: Target) => string[] },
  ): Promise<void> => {
    const list = targets.filter((t) => !o.only || o.only(t));
    const times = new Map<Target, number[]>(list.map((t) => [t, []]));
    const opts = (t: Target, runs: number) => ({ cwd: o.cwd?.(t), env: genv, runs, warmup: 0, prepare: o.prepare?.(t) });
    for (const t of list) if (o.warmup > 0) await timer.time(argv(t), opts(t, o.warmup));
    for (let r = 0; r < o.rounds; r++) {
      for (let k = 0; k < list.length; k++) {
        const t = list[(r + k) % list.length];
        times.get(t)!.push(...(await timer.time(argv(t), opts(t, o.perRound))));
      }
    }
    for (const t of list) record(t, m, times.get(t)!);
  };
  const metaRuns = { rounds: plan.metaRuns, perRound: 1, warmup: plan.metaWarmup };
  const findCmd = (t: Target) => ['find', t.tree, '-printf', '%s\\n'];
  const gitCmd = (t: Target) => ['git', '-C', t.tree, 'status', '--porcelain'];
  await interleaved('stat_warm', () => ['xargs', '-0', '-a', data.list, 'stat', '-c', '%s'], { ...metaRuns, cwd: (t) => t.tree });
  await interleaved('find', findCmd, metaRuns);
  await interleaved('git_status_warm', gitCmd, { ...metaRuns, rounds: plan.gitRuns });
  // First access after a fresh mount; native has no mount, so its figure is simply a plain run.
  for (const [m, argv] of [['find_cold', findCmd], ['git_status_cold', gitCmd]] as [MetricKey, (t: Target) => string[]][]) {
    const times = new Map<Target, number[]>(targets.map((t) => [t, []]));
    for (let r = 0; r < plan.coldReps; r++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(r + k) % targets.length];
        if (t.remount) await t.remount();
        times.get(t)!.push(...(await timer.time(argv(t), { env: genv, runs: 1, warmup: 0 })));
      }
    }
    for (const t of targets) record(t, m, times.get(t)!);
  }
  // Untimed: the large file's content must be the data set's (this also fills the caches).
  for (const t of targets) if (t.big && t.key !== 'native') await must('cmp', [path.join(data.dir, 'big.bin'), t.big]);
  await interleaved('read', (t) => ['cat', t.big!], { rounds: plan.readRuns, perRound: 1, warmup: 1, only: (t) => t.big !== null });
  const dd = (t: Target, sync: boolean) => ['dd', 'if=/dev/zero', `of=${t.out}`, 'bs=1M', `count=${plan.bigMiB}`, ...(sync ? ['conv=fsync'] : []), 'status=none'];
  await interleaved('write', (t) => dd(t, true), { rounds: plan.writeRuns, perRound: 1, warmup: 1, only: (t) => t.out !== null, prepare: (t) => ['rm', '-f', t.out!] });
  for (const t of targets) {
    if (!t.out) continue;
    const size = fs.statSync(t.out).size;
    if (size !== plan.bigMiB * 2 ** 20) notes.push(`${LABELS[t.key]}: the written file has ${size} bytes, expected ${plan.bigMiB * 2 ** 20}`);
  }
  await interleaved('write_nosync', (t) => dd(t, false), {
    rounds: plan.writeRuns, perRound: 1, warmup: 1, only: (t) => t.out !== null, prepare: (t) => ['sh', '-c', `rm -f ${t.out} && sync`],
  });
  for (const t of targets) if (t.out) fs.rmSync(t.out, { force: true });
  await must('sync', []);
  await interleaved('exec', (t) => [t.trueBin], { rounds: 10, perRound: Math.ceil(plan.execRuns / 10), warmup: plan.execWarmup });
  await interleaved('exec_node', (t) => [t.nodeBin, '--version'], { rounds: plan.nodeRuns, perRound: 1, warmup: 3 });

  // ---- switch latency ----------------------------------------------------------------------------
  log(`switch latency: ${plan.switchIters * 2} switches of layer "tools" over the control socket`);
  const ctl = new Control();
  await ctl.connect(socketPath(strata.home, strata.env));
  const smnt = strata.mnt;
  const stale = { exec: 0, negative: 0, freshWrong: 0 };
  let nextName = 0;
  let pending: number | null = null;
  const layerOnly = (i: number) => path.join(smnt, 'tool', 'n', `l${i}`);
  const sw = await measureSwitch(ctl, 'tools', plan.switchIters, {
    read: () => readOr(path.join(smnt, 'tool', 'version')),
    expect: (a) => (a ? LAYER_VERSION : BASE_VERSION),
    after: (a) => {
      const msgs: string[] = [];
      const ran = runScript(path.join(smnt, 'tool', 'run.sh'));
      const wantRun = a ? LAYER_RUN : BASE_RUN;
      if (ran !== wantRun) {
        stale.exec++;
        msgs.push(`executing tool/run.sh printed "${ran}", expected "${wantRun}"`);
      }
      if (pending !== null) {
        // A name looked up before the switch (negative entry when the layer was off) must follow it.
        const seen = readOr(layerOnly(pending));
        if (seen.startsWith('<') === a) {
          stale.negative++;
          msgs.push(`tool/n/l${pending} (looked up before the switch) read ${JSON.stringify(seen.trim())} after ${a ? 'activate' : 'deactivate'}`);
        }
      }
      return msgs.length ? msgs.join('; ') : null;
    },
    between: (a) => {
      const i = nextName++;
      const seen = readOr(layerOnly(i));
      if (seen.startsWith('<') === a) stale.freshWrong++;
      pending = i;
    },
  });
  log(`switch tools: p50 ${fmtMs(sw.p50)} ms, p99 ${fmtMs(sw.p99)} ms, stale first reads ${sw.staleReads}, stale exec ${stale.exec}, stale negative entries ${stale.negative}`);

  log(`switch latency with ${plan.files} paths cached under the mapping: ${plan.treeSwitchIters * 2} switches of layer "tree"`);
  const probeFile = path.join(smnt, 'mapped', data.files[0]);
  const probeText = fs.readFileSync(path.join(data.dir, 'tree', data.files[0]), 'utf8');
  const tree = await measureSwitch(ctl, 'tree', plan.treeSwitchIters, {
    read: () => readOr(probeFile),
    expect: (a) => (a ? probeText : '<ENOENT>'),
    between: (a) => {
      // Fill the kernel caches under /mapped again, so every deactivation has all of them to drop.
      if (a) spawnSync('find', [path.join(smnt, 'mapped'), '-printf', '%s\\n'], { stdio: 'ignore', timeout: 120000 });
    },
  });
  ctl.close();
  log(`switch tree: p50 ${fmtMs(tree.p50)} ms, p99 ${fmtMs(tree.p99)} ms, stale first reads ${tree.staleReads}${tree.aborted ? `; stopped early: ${tree.aborted}` : ''}`);

  // ---- the agent's own account -------------------------------------------------------------------
  const agentLog = strata.agentLog();
  const problems = agentLog.split('\n').filter((l) => /fail|error|uncaught|unhandled|E_[A-Z]+|warn/i.test(l)).slice(0, 30);
  const agentAlive = (() => {
    try {
      if (strata.agentPid !== null) process.kill(strata.agentPid, 0);
      return strata.agentPid !== null;
    } catch {
      return false;
    }
  })();
  if (!agentAlive) notes.push('the Strata agent was no longer running at the end of the run');

  // ---- results -----------------------------------------------------------------------------------
  const ratio = (sys: SystemKey, m: MetricKey, ref: SystemKey = 'native'): number | null => {
    const a = ms[sys]?.[m];
    const b = ms[ref]?.[m];
    return a === undefined || b === undefined || b <= 0 ? null : a / b;
  };
  const staleTotal = sw.staleReads + tree.staleReads + stale.negative;
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: mach,
    strata_revision: rev,
    mode: args.quick ? 'quick' : 'full',
    sizes: { files: plan.files, big_mib: plan.bigMiB },
    timer: avail.hyperfine ? 'hyperfine -N (median)' : 'node child_process (median)',
    ratio_definition: RATIO_DEFINITION,
  };
  for (const sys of SYSTEMS) {
    if (sys === 'native') continue;
    for (const m of METRICS) out[`${PREFIX[sys]}${m.key}_ratio`] = present.has(sys) ? round(ratio(sys, m.key)) : null;
  }
  out.read_throughput_vs_native = ms.strata?.read && ms.native?.read ? round(ms.native.read / ms.strata.read) : null;
  Object.assign(out, {
    switch_p50_ms: round(sw.p50),
    switch_p99_ms: round(sw.p99),
    switch_max_ms: round(sw.max),
    switch_activate_p50_ms: round(sw.activateP50),
    switch_activate_p99_ms: round(sw.activateP99),
    switch_deactivate_p50_ms: round(sw.deactivateP50),
    switch_deactivate_p99_ms: round(sw.deactivateP99),
    switch_response_p50_ms: round(sw.responseP50),
    switch_response_p99_ms: round(sw.responseP99),
    switches: sw.switches,
    stale_reads: staleTotal,
    stale_detail: {
      first_read_after_response_tools: sw.staleReads,
      first_read_after_response_tree: tree.staleReads,
      negative_entry_after_activate: stale.negative,
      exec_after_switch: stale.exec,
      fresh_lookup_wrong: stale.freshWrong,
    },
    busy_refusals: sw.busyRefusals + tree.busyRefusals,
    bench_pid: process.pid,
    switch_aborted: sw.aborted,
    switch_tree_aborted: tree.aborted,
    switch_tree_p50_ms: round(tree.p50),
    switch_tree_p99_ms: round(tree.p99),
    switch_tree_max_ms: round(tree.max),
    switch_tree_response_p50_ms: round(tree.responseP50),
    switches_tree: tree.switches,
  });
  const vs: Record<string, Record<string, number | null>> = {};
  for (const p of PEERS) {
    if (!present.has(p)) continue;
    vs[p] = {};
    for (const m of METRICS) vs[p][m.key] = round(ratio('strata', m.key, p));
  }
  out.strata_vs_peers = vs;
  const msOut: Record<string, Record<string, number | null>> = {};
  for (const sys of SYSTEMS) {
    if (!present.has(sys)) continue;
    msOut[sys] = {};
    for (const m of METRICS) msOut[sys][m.key] = round(ms[sys]?.[m.key] ?? null);
  }
  out.ms = msOut;
  out.switch_ms = { tools: sw.latencies.map((x) => round(x)), tree: tree.latencies.map((x) => round(x)) };
  out.runs_ms = raw;
  out.skipped = SYSTEMS.filter((s) => !present.has(s));
  out.evidence = {
    stale_first_read: [...sw.evidence.stale, ...tree.evidence.stale],
    after_switch_checks: [...sw.evidence.after, ...tree.evidence.after],
    busy_refusals: [...sw.evidence.busy, ...tree.evidence.busy],
  };
  out.agent_log_problems = problems;
  out.notes = notes;
  out.duration_s = Math.round((Date.now() - t0) / 1000);
  clearInterval(sampler);
  load.push(os.loadavg()[0]);
  out.load_1min = { start: round(load[0], 2), max: round(Math.max(...load), 2), end: round(load[load.length - 1], 2), cores: os.cpus().length };

  if (args.json) {
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }

  // ---- text report -------------------------------------------------------------------------------
  const shown = SYSTEMS.filter((s) => present.has(s));
  const w0 = 32;
  const col = (s: string) => s.padStart(15);
  const lines: string[] = [];
  lines.push(`Strata file system benchmark, ${out.date}`);
  lines.push(`machine: ${mach.cpu}, ${mach.cores} cores, kernel ${mach.kernel}, ${mach.os}, ${mach.memory_gib} GiB, node ${mach.node}, ${mach.fs}`);
  lines.push(`strata: commit ${rev.head}${rev.uncommitted.length ? ` + uncommitted changes to ${rev.uncommitted.join(', ')}` : ''}; addon built ${rev.addon_built}`);
  lines.push(`data: git repository of ${plan.files} files, ${plan.bigMiB} MiB file; ${out.timer}`);
  lines.push('strata: tree passes through to the base; "strata (layer)" is the same tree served from a mapped layer (/mapped -> tree), binaries from /tool/bin in the layer');
  lines.push('');
  lines.push('median wall time, ms');
  lines.push('metric'.padEnd(w0) + shown.map((s) => col(LABELS[s])).join(''));
  for (const m of METRICS) lines.push(m.label(plan).padEnd(w0) + shown.map((s) => col(fmtMs(ms[s]?.[m.key]))).join(''));
  lines.push('');
  lines.push('ratio to native (system ms / native ms; lower is better)');
  lines.push('metric'.padEnd(w0) + shown.filter((s) => s !== 'native').map((s) => col(LABELS[s])).join(''));
  for (const m of METRICS) {
    lines.push(m.label(plan).padEnd(w0) + shown.filter((s) => s !== 'native').map((s) => col(fmtRatio(ratio(s, m.key)))).join(''));
  }
  const shownPeers = PEERS.filter((p) => present.has(p));
  if (shownPeers.length) {
    lines.push('');
    lines.push('strata vs each peer (strata ms / peer ms; below 1 = strata faster)');
    lines.push('metric'.padEnd(w0) + shownPeers.map((s) => col(LABELS[s])).join(''));
    for (const m of METRICS) lines.push(m.label(plan).padEnd(w0) + shownPeers.map((p) => col(fmtRatio(ratio('strata', m.key, p)))).join(''));
  }
  lines.push('');
  lines.push(`switch (layer "tools", /tool -> tool; ${sw.switches} switches, request sent -> first correct fresh read):`);
  lines.push(`  p50 ${fmtMs(sw.p50)} ms, p99 ${fmtMs(sw.p99)} ms, max ${fmtMs(sw.max)} ms; activate p50/p99 ${fmtMs(sw.activateP50)}/${fmtMs(sw.activateP99)} ms, deactivate p50/p99 ${fmtMs(sw.deactivateP50)}/${fmtMs(sw.deactivateP99)} ms; agent response p50 ${fmtMs(sw.responseP50)} ms, p99 ${fmtMs(sw.responseP99)} ms`);
  lines.push(`switch (layer "tree", ${plan.files} paths cached under /mapped; ${tree.switches} switches): p50 ${fmtMs(tree.p50)} ms, p99 ${fmtMs(tree.p99)} ms, max ${fmtMs(tree.max)} ms, response p50 ${fmtMs(tree.responseP50)} ms`);
  for (const r of [sw, tree]) if (r.aborted) lines.push(`  layer "${r.layer}" test stopped early: ${r.aborted}`);
  lines.push(`stale reads: ${staleTotal} (first read after the response: tools ${sw.staleReads}, tree ${tree.staleReads}; layer-only name looked up while off, read after activate/deactivate: ${stale.negative}); stale exec: ${stale.exec}; deactivate refused as busy: ${sw.busyRefusals + tree.busyRefusals} (this bench's pid: ${process.pid})`);
  for (const e of [
    ...[...sw.evidence.stale, ...tree.evidence.stale].slice(0, 3),
    ...[...sw.evidence.after, ...tree.evidence.after].slice(0, 3),
    ...[...sw.evidence.busy, ...tree.evidence.busy].slice(0, 3),
  ]) lines.push(`  - ${e}`);
  lines.push('');
  lines.push('against the aims (a reading, not a test):');
  const meta: MetricKey[] = ['stat_warm', 'find', 'git_status_warm'];
  for (const m of meta) {
    const r = ratio('strata', m);
    const faster = shownPeers.filter((p) => p !== 'overlayfs').map((p) => `${LABELS[p]} ${fmtRatio(ratio('strata', m, p))}`);
    lines.push(`  ${m}: ${fmtRatio(r)}x native (aim <= 1.2): ${r !== null && r <= 1.2 ? 'met' : 'not met'}; strata/peer: ${faster.join(', ') || '-'}`);
  }
  const rr = ratio('strata', 'read');
  lines.push(`  read: time ratio ${fmtRatio(rr)} = ${rr ? (1 / rr).toFixed(2) : '-'}x native throughput (aim >= 0.9x, i.e. ratio <= 1.11): ${rr !== null && rr <= 1 / 0.9 ? 'met' : 'not met'}`);
  lines.push(`  switch: p99 ${fmtMs(sw.p99)} ms (aim <= 20 ms), stale reads ${staleTotal} (aim 0): ${sw.p99 <= 20 && staleTotal === 0 ? 'met' : 'not met'}`);
  if (problems.length) {
    lines.push('');
    lines.push(`agent log lines that look like problems (${problems.length}):`);
    for (const p of problems.slice(0, 10)) lines.push(`  ${p}`);
  }
  if (notes.length) {
    lines.push('');
    lines.push('notes:');
    for (const n of notes) lines.push(`  - ${n}`);
  }
  lines.push('');
  lines.push(`took ${out.duration_s} s; 1-minute load average start ${load[0].toFixed(2)}, max ${Math.max(...load).toFixed(2)}, end ${load[load.length - 1].toFixed(2)} on ${os.cpus().length} cores${Math.max(...load) > os.cpus().length ? ' (above the core count: other work competed with this run)' : ''}`);
  process.stdout.write(lines.join('\n') + '\n');
}

// ---- entry ---------------------------------------------------------------------------------------

let exiting = false;
function onSignal(sig: NodeJS.Signals): void {
  if (exiting) return;
  exiting = true;
  process.stderr.write(`\n[bench] ${sig}: cleaning up\n`);
  cleanupAll();
  process.exit(sig === 'SIGINT' ? 130 : 143);
}
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGHUP', () => onSignal('SIGHUP'));
process.on('exit', () => cleanupAll());

main().then(
  () => {
    cleanupAll();
    process.exit(0);
  },
  (e) => {
    process.stderr.write(`[bench] failed: ${(e as Error)?.stack ?? e}\n`);
    cleanupAll();
    process.exit(1);
  },
);
