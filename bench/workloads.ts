/**
 * What is timed on each data set, and how: every workload runs on every system in interleaved
 * rounds, so slow drift of a shared machine hits all systems alike.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Shape, gitEnv } from './dataset';
import { Plan } from './plan';
import { RealTree } from './realtree';
import { LABELS, System, SystemKey } from './systems';
import { Timer, log, median, must, round } from './util';

export type MetricKey =
  | 'stat_warm'
  | 'find'
  | 'git_status_warm'
  | 'find_cold'
  | 'git_status_cold'
  | 'find_warmed'
  | 'git_status_warmed'
  | 'read'
  | 'write'
  | 'write_nosync'
  | 'write_small'
  | 'exec'
  | 'exec_node';

export type DataSetKey = 'synthetic' | 'real';

/** Where one data set's workloads find their files on one system. */
export interface Target {
  key: SystemKey;
  /** The data set's git repository. */
  tree: string;
  /** The large file (synthetic), or null. */
  big: string | null;
  /** What the write workloads create (a file, or a folder for the real set); null: no writes. */
  out: string | null;
  exec: string[] | null;
  execNode: string[] | null;
  remount: (() => Promise<void>) | null;
  remountWarm: (() => Promise<void>) | null;
}

export interface Metric {
  key: MetricKey;
  label: string;
  argv: (t: Target) => string[];
  /** Timed once per round right after a fresh mount (native: a plain run). */
  cold?: boolean;
  /** With cold: the mount as users get it by default (remountWarm), not a cold one. */
  warmed?: boolean;
  rounds: number;
  perRound: number;
  warmup: number;
  only?: (t: Target) => boolean;
  cwd?: (t: Target) => string;
  /** Run untimed before every run. */
  prepare?: (t: Target) => string[];
  /** Untimed checks before and after the workload; they return notes. */
  before?: (ts: Target[]) => Promise<string[]>;
  after?: (ts: Target[]) => Promise<string[]>;
}

export interface DataSet {
  key: DataSetKey;
  title: string;
  /** How the data set was made, for the report. */
  about: string;
  shape: Shape;
  /** The Strata layer that maps this tree (for strata (layer) and the switch test). */
  layer: string;
  /** Where that layer shows in the view, relative to the mount. */
  mapped: string;
  /** A file of the tree (relative to it) and its content, for the switch test. */
  probe: { rel: string; text: string };
  targets: Target[];
  metrics: Metric[];
}

export type Table = Partial<Record<SystemKey, Partial<Record<MetricKey, number>>>>;
export type Runs = Partial<Record<SystemKey, Partial<Record<MetricKey, number[]>>>>;

// ---- the two data sets -----------------------------------------------------------------------------

const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 1 : 0)} MiB`;
const n = (x: number) => x.toLocaleString('en-US');

function metaMetrics(plan: Plan, files: number, list: string): Metric[] {
  const meta = { rounds: plan.metaRuns, perRound: 1, warmup: plan.metaWarmup };
  const cold = { cold: true, rounds: plan.coldReps, perRound: 1, warmup: 0 };
  const warmed = { ...cold, warmed: true, only: (t: Target) => t.remount === null || t.remountWarm !== null };
  const findCmd = (t: Target) => ['find', t.tree, '-printf', '%s\\n'];
  const gitCmd = (t: Target) => ['git', '-C', t.tree, 'status', '--porcelain'];
  return [
    {
      key: 'stat_warm',
      label: `stat ${n(files)} files (warm)`,
      argv: () => ['xargs', '-0', '-a', list, 'stat', '-c', '%s'],
      cwd: (t) => t.tree,
      ...meta,
    },
    { key: 'find', label: 'find tree -printf %s (warm)', argv: findCmd, ...meta },
    { key: 'git_status_warm', label: 'git status (warm)', argv: gitCmd, ...meta, rounds: plan.gitRuns },
    { key: 'find_cold', label: 'find, first after mount', argv: findCmd, ...cold },
    { key: 'git_status_cold', label: 'git status, first after mount', argv: gitCmd, ...cold },
    // Strata lists a new view before `view add` answers (docs/view-core.md, "Warm-up"); the rows
    // above are its --no-warm mounts, these its default ones.
    { key: 'find_warmed', label: 'find, first after view add (warm-up)', argv: findCmd, ...warmed },
    { key: 'git_status_warmed', label: 'git status, first after view add (warm-up)', argv: gitCmd, ...warmed },
  ];
}

/** data/{tree, big.bin, bin/}: 100 files per folder, one large file, two binaries. */
export function syntheticSet(plan: Plan, systems: System[], data: string, files: string[], list: string, shape: Shape): DataSet {
  const targets = systems.map((s): Target => {
    const bin = s.viaLayer ? path.join(s.root, 'tool', 'bin') : path.join(s.root, 'bin');
    return {
      key: s.key,
      tree: path.join(s.root, s.viaLayer ? 'mapped' : 'tree'),
      big: s.viaLayer ? null : path.join(s.root, 'big.bin'),
      out: s.out && path.join(s.out, 'out.bin'),
      exec: [path.join(bin, 'true')],
      execNode: [path.join(bin, 'node'), '--version'],
      remount: s.remount,
      remountWarm: s.remountWarm,
    };
  });
  const bytes = plan.bigMiB * 2 ** 20;
  const dd = (t: Target, sync: boolean, bs = 1 << 20) => [
    'dd',
    'if=/dev/zero',
    `of=${t.out}`,
    `bs=${bs}`,
    `count=${bytes / bs}`,
    ...(sync ? ['conv=fsync'] : []),
    'status=none',
  ];
  const writes = { rounds: plan.writeRuns, perRound: 1, warmup: 1, only: (t: Target) => t.out !== null };
  const sizeCheck = async (ts: Target[]) =>
    ts
      .filter((t) => t.out)
      .flatMap((t) => {
        const size = fs.statSync(t.out!).size;
        return size === bytes ? [] : [`${LABELS[t.key]}: the written file has ${size} bytes, expected ${bytes}`];
      });
  // Without fsync: what the last run left is flushed before each run and once at the end.
  const noSync = {
    ...writes,
    prepare: (t: Target) => ['sh', '-c', `rm -f ${t.out} && sync`],
    after: async (ts: Target[]) => {
      const notes = await sizeCheck(ts);
      for (const t of ts) if (t.out) fs.rmSync(t.out, { force: true });
      await must('sync', []);
      return notes;
    },
  };
  const metrics: Metric[] = [
    ...metaMetrics(plan, files.length, list),
    {
      key: 'read',
      label: `cat ${plan.bigMiB} MiB (warm)`,
      argv: (t) => ['cat', t.big!],
      rounds: plan.readRuns,
      perRound: 1,
      warmup: 1,
      only: (t) => t.big !== null,
      // The large file's content must be the data set's (this also fills the caches).
      before: async (ts) => {
        for (const t of ts) if (t.big && t.key !== 'native') await must('cmp', [path.join(data, 'big.bin'), t.big]);
        return [];
      },
    },
    {
      key: 'write',
      label: `dd write ${plan.bigMiB} MiB + fsync`,
      argv: (t) => dd(t, true),
      ...writes,
      prepare: (t) => ['rm', '-f', t.out!],
      after: sizeCheck,
    },
    {
      key: 'write_nosync',
      label: `dd write ${plan.bigMiB} MiB, no fsync`,
      argv: (t) => dd(t, false),
      ...noSync,
    },
    {
      // Many programs write in small pieces (tar, compilers, loggers): one write(2) per 4 KiB.
      key: 'write_small',
      label: `dd write ${plan.bigMiB} MiB in 4 KiB writes, no fsync`,
      argv: (t) => dd(t, false, 4096),
      ...noSync,
    },
    {
      key: 'exec',
      label: 'exec bin/true',
      argv: (t) => t.exec!,
      rounds: 10,
      perRound: Math.ceil(plan.execRuns / 10),
      warmup: plan.execWarmup,
    },
    { key: 'exec_node', label: 'exec bin/node --version', argv: (t) => t.execNode!, rounds: plan.nodeRuns, perRound: 1, warmup: 3 },
  ];
  return {
    key: 'synthetic',
    title: 'synthetic',
    about: `git repository of ${n(shape.files)} generated files, 100 per leaf folder; ${plan.bigMiB} MiB file; bin/true, bin/node`,
    shape,
    layer: 'tree',
    mapped: 'mapped',
    probe: { rel: files[0], text: fs.readFileSync(path.join(data, 'tree', files[0]), 'utf8') },
    targets,
    metrics,
  };
}

/** data/nm/tree: the real tree as a git repository; its own executable; a package copied in as the write. */
export function realSet(plan: Plan, systems: System[], rt: RealTree, rel: string, mapped: string): DataSet {
  const targets = systems.map((s): Target => {
    const tree = s.viaLayer ? path.join(s.root, mapped) : path.join(s.root, rel);
    return {
      key: s.key,
      tree,
      big: null,
      out: s.out && path.join(s.out, 'nm-out'),
      exec: rt.exec ? [path.join(tree, rt.exec), '--version'] : null,
      execNode: null,
      remount: s.remount,
      remountWarm: s.remountWarm,
    };
  });
  const metrics: Metric[] = [
    ...metaMetrics(plan, rt.files.length, rt.list),
    {
      key: 'read',
      label: `cat all ${n(rt.files.length)} files (warm)`,
      argv: () => ['xargs', '-0', '-a', rt.list, 'cat'],
      cwd: (t) => t.tree,
      rounds: plan.readRuns,
      perRound: 1,
      warmup: 1,
    },
  ];
  const w = rt.writeSrc;
  if (w) {
    const src = path.join(rt.dir, w.rel);
    metrics.push({
      key: 'write_nosync',
      label: `cp -a ${w.files} files, no fsync`,
      argv: (t) => ['cp', '-a', src, t.out!],
      rounds: plan.writeRuns,
      perRound: 1,
      warmup: 1,
      only: (t) => t.out !== null,
      prepare: (t) => ['sh', '-c', `rm -rf ${t.out} && sync`],
      after: async (ts) => {
        const notes: string[] = [];
        for (const t of ts) {
          if (!t.out) continue;
          const got = (await must('find', [t.out, '-type', 'f', '-printf', '.'])).length;
          if (got !== w.files) notes.push(`${LABELS[t.key]}: the copied package has ${got} files, expected ${w.files}`);
          await must('rm', ['-rf', t.out]);
        }
        await must('sync', []);
        return notes;
      },
    });
  }
  if (rt.exec)
    metrics.push({
      key: 'exec',
      label: `exec ${rt.exec} --version`,
      argv: (t) => t.exec!,
      rounds: 10,
      perRound: Math.ceil(plan.nodeRuns / 10),
      warmup: 3,
    });
  const probe = rt.files[0];
  return {
    key: 'real',
    title: 'real',
    about:
      `${rt.source}${plan.realFiles ? ` (part: about ${n(plan.realFiles)} files)` : ''} copied with cp -a and committed as a git repository` +
      `; read: every file; write: cp -a of ${w ? `${w.rel} (${n(w.files)} files, ${mib(w.bytes)})` : '(no package small enough)'}` +
      `; exec: ${rt.exec ?? '(no executable found in .bin)'}`,
    shape: rt.shape,
    layer: 'nm',
    mapped,
    probe: { rel: probe, text: fs.readFileSync(path.join(rt.dir, probe), 'utf8') },
    targets,
    metrics: metrics.filter((m) => targets.some((t) => !m.only || m.only(t))),
  };
}

// ---- timing ---------------------------------------------------------------------------------------

export interface Measured {
  ms: Table;
  runs: Runs;
}

/** Time every metric of `ds` on every target; notes gather anything a check found. */
export async function measure(ds: DataSet, timer: Timer, notes: string[]): Promise<Measured> {
  const env = gitEnv();
  const ms: Table = {};
  const runs: Runs = {};
  for (const t of ds.targets) {
    // Untimed: every system must show a clean repository (first run also lets git refresh its index).
    await must('git', ['-C', t.tree, 'status', '--porcelain'], { env });
    const dirty = (await must('git', ['-C', t.tree, 'status', '--porcelain'], { env })).trim();
    if (dirty) notes.push(`${ds.title}: ${LABELS[t.key]}: git status is not clean: ${dirty.split('\n').slice(0, 3).join(' | ')}`);
  }
  for (const m of ds.metrics) {
    const list = ds.targets.filter((t) => !m.only || m.only(t));
    if (m.before) notes.push(...(await m.before(list)).map((x) => `${ds.title}: ${x}`));
    const times = new Map<Target, number[]>(list.map((t) => [t, []]));
    const opts = (t: Target, r: number) => ({ cwd: m.cwd?.(t), env, runs: r, warmup: 0, prepare: m.prepare?.(t) });
    for (const t of list) if (m.warmup > 0) await timer.time(m.argv(t), opts(t, m.warmup));
    // Each round rotates the order of the systems.
    for (let r = 0; r < m.rounds; r++) {
      for (let k = 0; k < list.length; k++) {
        const t = list[(r + k) % list.length];
        const fresh = m.warmed ? t.remountWarm : t.remount;
        if (m.cold && fresh) await fresh();
        times.get(t)!.push(...(await timer.time(m.argv(t), opts(t, m.perRound))));
      }
    }
    for (const t of list) {
      const xs = times.get(t)!;
      (runs[t.key] ??= {})[m.key] = xs.map((x) => round(x, 3)!);
      (ms[t.key] ??= {})[m.key] = median(xs);
      log(
        `${ds.title.padEnd(9)} ${m.key.padEnd(16)} ${LABELS[t.key].padEnd(15)} ${fmtMs(median(xs)).padStart(8)} ms  (median of ${xs.length})`,
      );
    }
    if (m.after) notes.push(...(await m.after(list)).map((x) => `${ds.title}: ${x}`));
  }
  return { ms, runs };
}

export function fmtMs(x: number | undefined | null): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '-';
  if (x < 10) return x.toFixed(2);
  if (x < 100) return x.toFixed(1);
  return x.toFixed(0);
}
