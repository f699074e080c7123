/**
 * The benchmark's output: one JSON object, or text tables per data set. Ratios are time ratios
 * (system ms / native ms of the same run): lower is better.
 */
import * as os from 'os';
import { Shape } from './dataset';
import { Machine, Revision } from './env';
import { SwitchResult, ToolsSwitch } from './switch';
import { LABELS, SystemKey } from './systems';
import { round } from './util';
import { DataSet, Measured, MetricKey, fmtMs } from './workloads';

export const SYSTEMS: SystemKey[] = ['native', 'overlayfs', 'fuse_overlayfs', 'unionfs_fuse', 'strata', 'strata_layer'];
const PEERS: SystemKey[] = ['overlayfs', 'fuse_overlayfs', 'unionfs_fuse'];
/** JSON key prefix per system; Strata's own ratios carry no prefix. */
const PREFIX: Record<SystemKey, string> = {
  native: 'native_',
  overlayfs: 'overlayfs_',
  fuse_overlayfs: 'fuse_overlayfs_',
  unionfs_fuse: 'unionfs_fuse_',
  strata: '',
  strata_layer: 'strata_layer_',
};
const READ_AIM = 0.95;

const RATIO_DEFINITION =
  'time ratios: system median ms / native median ms of the same run (for strata_vs_peers: strata ms / peer ms); lower is better; ' +
  `read_ratio <= ${(1 / READ_AIM).toFixed(3)} means read throughput >= ${READ_AIM}x native`;

export interface SetResult {
  ds: DataSet;
  m: Measured;
  tools: ToolsSwitch;
  mapped: SwitchResult;
}

export interface RunInfo {
  date: string;
  machine: Machine;
  revision: Revision;
  quick: boolean;
  sizes: { files: number; big_mib: number };
  timer: string;
  skipped: SystemKey[];
  agentLogProblems: string[];
  notes: string[];
  durationS: number;
  load: number[];
}

function ratio(r: SetResult, sys: SystemKey, m: MetricKey, ref: SystemKey = 'native'): number | null {
  const a = r.m.ms[sys]?.[m];
  const b = r.m.ms[ref]?.[m];
  return a === undefined || b === undefined || b <= 0 ? null : a / b;
}

const present = (r: SetResult): SystemKey[] => SYSTEMS.filter((s) => r.ds.targets.some((t) => t.key === s));
const staleTotal = (r: SetResult) => r.tools.staleReads + r.mapped.staleReads + r.tools.stale.negative;

// ---- JSON -------------------------------------------------------------------------------------------

/** One data set's figures, under the key names the bench has always used. */
function setJson(r: SetResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const shown = present(r);
  for (const sys of SYSTEMS) {
    if (sys === 'native') continue;
    for (const m of r.ds.metrics) out[`${PREFIX[sys]}${m.key}_ratio`] = shown.includes(sys) ? round(ratio(r, sys, m.key)) : null;
  }
  const rd = ratio(r, 'strata', 'read');
  out.read_throughput_vs_native = rd ? round(1 / rd) : null;
  const { tools: sw, mapped: tree } = r;
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
    stale_reads: staleTotal(r),
    stale_detail: {
      first_read_after_response_tools: sw.staleReads,
      first_read_after_response_tree: tree.staleReads,
      negative_entry_after_activate: sw.stale.negative,
      exec_after_switch: sw.stale.exec,
      fresh_lookup_wrong: sw.stale.freshWrong,
    },
    busy_refusals: sw.busyRefusals + tree.busyRefusals,
    switch_aborted: sw.aborted,
    switch_tree_aborted: tree.aborted,
    switch_tree_layer: tree.layer,
    switch_tree_paths: r.ds.shape.files,
    switch_tree_p50_ms: round(tree.p50),
    switch_tree_p99_ms: round(tree.p99),
    switch_tree_max_ms: round(tree.max),
    switch_tree_response_p50_ms: round(tree.responseP50),
    switches_tree: tree.switches,
  });
  const vs: Record<string, Record<string, number | null>> = {};
  for (const p of PEERS) {
    if (!shown.includes(p)) continue;
    vs[p] = {};
    for (const m of r.ds.metrics) vs[p][m.key] = round(ratio(r, 'strata', m.key, p));
  }
  out.strata_vs_peers = vs;
  const ms: Record<string, Record<string, number | null>> = {};
  for (const sys of shown) {
    ms[sys] = {};
    for (const m of r.ds.metrics) ms[sys][m.key] = round(r.m.ms[sys]?.[m.key] ?? null);
  }
  out.ms = ms;
  out.switch_ms = { tools: sw.latencies.map((x) => round(x)), tree: tree.latencies.map((x) => round(x)) };
  out.runs_ms = r.m.runs;
  out.evidence = {
    stale_first_read: [...sw.evidence.stale, ...tree.evidence.stale],
    after_switch_checks: [...sw.evidence.after, ...tree.evidence.after],
    busy_refusals: [...sw.evidence.busy, ...tree.evidence.busy],
  };
  return out;
}

/** Top level: the synthetic data set's figures (as before); `real` holds the same keys for the real one. */
export function toJson(info: RunInfo, synth: SetResult, real: SetResult): Record<string, unknown> {
  const load = info.load;
  return {
    date: info.date,
    machine: info.machine,
    strata_revision: info.revision,
    mode: info.quick ? 'quick' : 'full',
    sizes: info.sizes,
    datasets: Object.fromEntries(
      [synth, real].map((r) => [
        r.ds.key,
        { about: r.ds.about, ...r.ds.shape, workloads: Object.fromEntries(r.ds.metrics.map((m) => [m.key, m.label])) },
      ]),
    ),
    timer: info.timer,
    ratio_definition: RATIO_DEFINITION,
    ...setJson(synth),
    real: setJson(real),
    bench_pid: process.pid,
    skipped: info.skipped,
    agent_log_problems: info.agentLogProblems,
    notes: info.notes,
    duration_s: info.durationS,
    load_1min: {
      start: round(load[0], 2),
      max: round(Math.max(...load), 2),
      end: round(load[load.length - 1], 2),
      cores: os.cpus().length,
    },
  };
}

// ---- text -------------------------------------------------------------------------------------------

const fmtRatio = (x: number | null): string => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(2));

export function shapeLine(s: Shape): string {
  const mib = s.bytes / 2 ** 20;
  return (
    `${s.files.toLocaleString('en-US')} files, ${s.symlinks} symlinks, ${s.folders.toLocaleString('en-US')} folders, ` +
    `${mib.toFixed(mib < 10 ? 1 : 0)} MiB, median ${s.median_files_per_folder} files per folder (.git not counted)`
  );
}

function setText(r: SetResult): string[] {
  const shown = present(r);
  const others = shown.filter((s) => s !== 'native');
  const shownPeers = PEERS.filter((p) => shown.includes(p));
  const w0 = Math.max(34, ...r.ds.metrics.map((m) => m.label.length + 2));
  const col = (s: string) => s.padStart(15);
  const L: string[] = [];
  const table = (title: string, cols: SystemKey[], cell: (s: SystemKey, m: MetricKey) => string): void => {
    L.push('', title, 'metric'.padEnd(w0) + cols.map((s) => col(LABELS[s])).join(''));
    for (const m of r.ds.metrics) L.push(m.label.padEnd(w0) + cols.map((s) => col(cell(s, m.key))).join(''));
  };
  L.push(`== data set "${r.ds.title}": ${r.ds.about}`);
  L.push(`shape: ${shapeLine(r.ds.shape)}`);
  table('median wall time, ms', shown, (s, m) => fmtMs(r.m.ms[s]?.[m]));
  table('ratio to native (system ms / native ms; lower is better)', others, (s, m) => fmtRatio(ratio(r, s, m)));
  if (shownPeers.length)
    table('strata vs each peer (strata ms / peer ms; below 1 = strata faster)', shownPeers, (p, m) => fmtRatio(ratio(r, 'strata', m, p)));
  const { tools: sw, mapped: tree } = r;
  L.push('');
  L.push(`switch (layer "tools", /tool -> tool; ${sw.switches} switches, request sent -> first correct fresh read):`);
  L.push(
    `  p50 ${fmtMs(sw.p50)} ms, p99 ${fmtMs(sw.p99)} ms, max ${fmtMs(sw.max)} ms; activate p50/p99 ${fmtMs(sw.activateP50)}/${fmtMs(sw.activateP99)} ms, ` +
      `deactivate p50/p99 ${fmtMs(sw.deactivateP50)}/${fmtMs(sw.deactivateP99)} ms; agent response p50 ${fmtMs(sw.responseP50)} ms, p99 ${fmtMs(sw.responseP99)} ms`,
  );
  L.push(
    `switch (layer "${tree.layer}", ${r.ds.shape.files.toLocaleString('en-US')} files cached under /${r.ds.mapped}; ${tree.switches} switches): ` +
      `p50 ${fmtMs(tree.p50)} ms, p99 ${fmtMs(tree.p99)} ms, max ${fmtMs(tree.max)} ms, response p50 ${fmtMs(tree.responseP50)} ms`,
  );
  for (const s of [sw, tree]) if (s.aborted) L.push(`  layer "${s.layer}" test stopped early: ${s.aborted}`);
  L.push(
    `stale reads: ${staleTotal(r)} (first read after the response: tools ${sw.staleReads}, ${tree.layer} ${tree.staleReads}; layer-only name looked up while off, ` +
      `read after activate/deactivate: ${sw.stale.negative}); stale exec: ${sw.stale.exec}; deactivate refused as busy: ${sw.busyRefusals + tree.busyRefusals} (this bench's pid: ${process.pid})`,
  );
  for (const e of [
    ...[...sw.evidence.stale, ...tree.evidence.stale].slice(0, 3),
    ...[...sw.evidence.after, ...tree.evidence.after].slice(0, 3),
    ...[...sw.evidence.busy, ...tree.evidence.busy].slice(0, 3),
  ])
    L.push(`  - ${e}`);
  L.push('', 'against the aims of issue 8 (a reading, not a test):');
  const has = (m: MetricKey) => r.ds.metrics.some((x) => x.key === m);
  const verdict = (ok: boolean) => (ok ? 'met' : 'not met');
  for (const m of ['stat_warm', 'find', 'git_status_warm'] as MetricKey[]) {
    const x = ratio(r, 'strata', m);
    const fo = shown.includes('fuse_overlayfs') ? ratio(r, 'strata', m, 'fuse_overlayfs') : null;
    L.push(
      `  ${m}: ${fmtRatio(x)}x native (aim <= 1.2, and faster than fuse-overlayfs: strata/fuse-overlayfs ${fmtRatio(fo)}): ` +
        verdict(x !== null && x <= 1.2 && (fo === null || fo < 1)),
    );
  }
  for (const m of ['find_cold', 'git_status_cold'] as MetricKey[]) {
    const x = ratio(r, 'strata', m);
    L.push(`  ${m}: ${fmtRatio(x)}x native (aim <= 3; a --no-warm mount): ${verdict(x !== null && x <= 3)}`);
  }
  for (const m of ['find_warmed', 'git_status_warmed'] as MetricKey[]) {
    if (has(m)) L.push(`  ${m}: ${fmtRatio(ratio(r, 'strata', m))}x native (the same after view add with its warm-up, the default)`);
  }
  if (has('exec')) {
    const x = ratio(r, 'strata', 'exec');
    L.push(`  exec: ${fmtRatio(x)}x native (aim <= 1.1): ${verdict(x !== null && x <= 1.1)}`);
  }
  if (has('read')) {
    const x = ratio(r, 'strata', 'read');
    L.push(
      `  read: time ratio ${fmtRatio(x)} = ${x ? (1 / x).toFixed(2) : '-'}x native throughput (aim >= ${READ_AIM}x): ${verdict(x !== null && 1 / x >= READ_AIM)}`,
    );
  }
  for (const m of ['write_nosync', 'write_small'] as MetricKey[]) {
    if (!has(m)) continue;
    const x = ratio(r, 'strata', m);
    L.push(`  ${m}: ${fmtRatio(x)}x native (aim <= 1.5): ${verdict(x !== null && x <= 1.5)}`);
  }
  L.push(
    `  switch: p99 ${fmtMs(sw.p99)} ms (aim <= 5), with the tree cached under the mapping ${fmtMs(tree.p99)} ms (aim <= 10), stale reads ${staleTotal(r)} (aim 0): ` +
      verdict(sw.p99 <= 5 && tree.p99 <= 10 && staleTotal(r) === 0),
  );
  return L;
}

export function toText(info: RunInfo, sets: SetResult[]): string {
  const { machine: mach, revision: rev, load } = info;
  const L: string[] = [];
  L.push(`Strata file system benchmark, ${info.date}`);
  L.push(
    `machine: ${mach.cpu}, ${mach.cores} cores, kernel ${mach.kernel}, ${mach.os}, ${mach.memory_gib} GiB, node ${mach.node}, ${mach.fs}`,
  );
  L.push(
    `strata: commit ${rev.head}${rev.uncommitted.length ? ` + uncommitted changes to ${rev.uncommitted.join(', ')}` : ''}; addon built ${rev.addon_built}`,
  );
  L.push(`timer: ${info.timer}; first after mount = right after a fresh mount of each system (native: a plain run); no cache is dropped`);
  L.push(
    'strata: the trees pass through to the base; "strata (layer)" is the same tree served from a mapped layer, binaries from /tool/bin in a layer',
  );
  for (const r of sets) L.push('', ...setText(r));
  if (info.agentLogProblems.length) {
    L.push('', `agent log lines that look like problems (${info.agentLogProblems.length}):`);
    for (const p of info.agentLogProblems.slice(0, 10)) L.push(`  ${p}`);
  }
  if (info.notes.length) {
    L.push('', 'notes:');
    for (const n of info.notes) L.push(`  - ${n}`);
  }
  const max = Math.max(...load);
  L.push('');
  L.push(
    `took ${info.durationS} s; 1-minute load average start ${load[0].toFixed(2)}, max ${max.toFixed(2)}, end ${load[load.length - 1].toFixed(2)} on ` +
      `${os.cpus().length} cores${max > os.cpus().length ? ' (above the core count: other work competed with this run)' : ''}`,
  );
  return L.join('\n') + '\n';
}
