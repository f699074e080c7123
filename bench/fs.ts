/**
 * The file system benchmark: `npm run bench` (or `node dist/bench.js`), options --quick, --json,
 * --dir, --real.
 *
 * In one run and side by side: the native directory, kernel overlayfs, fuse-overlayfs,
 * unionfs-fuse and a Strata view (served by a separate agent process, started through the real
 * CLI with a private STRATA_HOME), on two data sets: a synthetic git repository (100 files per
 * folder) with a large file and two binaries, and a real tree (a copy of this checkout's
 * node_modules: thousands of small folders) committed as a git repository. On each: warm stat,
 * find and git status, find and git status first after a fresh mount, reads, writes, exec, and
 * the latency of layer switches over the control socket with a check for stale reads.
 *
 * Ratios are time ratios (system ms / native ms): lower is better. Nothing here asserts a time.
 * See docs/benchmarks.md.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { socketPath } from '../shared/paths';
import { makeData, makeToolsLayerSource, refreshIndex, walkTree } from './dataset';
import { ensureTools, machine, revisionInfo } from './env';
import { FULL, QUICK, parseArgs } from './plan';
import { makeRealTree } from './realtree';
import { RunInfo, SYSTEMS, SetResult, shapeLine, toJson, toText } from './report';
import { Control, switchMapped, switchTools } from './switch';
import { FuseOverlayfs, KernelOverlay, LABELS, Peer, Strata, System, UnionfsFuse } from './systems';
import { Timer, cleanupAll, log, median, mountsUnder, must, onCleanup } from './util';
import { fmtMs, measure, realSet, syntheticSet } from './workloads';

/** Where the real tree sits in the data folder, and where layer "nm" maps it in the view. */
const REAL_REL = 'nm/tree';
const REAL_MAPPED = 'mapped-nm';

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const plan = args.quick ? QUICK : FULL;
  const t0 = Date.now();
  const notes: string[] = [];
  const cli = path.join(__dirname, 'cli.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first with "node esbuild.mjs" (npm run bench does)`);
  if (!fs.existsSync(args.real))
    throw new Error(`${args.real} (the real tree to copy) does not exist: run npm ci, or give another folder with --real`);
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
  log(`creating the synthetic data set: git repository of ${plan.files} files, ${plan.bigMiB} MiB file, binaries`);
  const data = await makeData(path.join(root, 'data'), plan.files, plan.bigMiB, path.join(root, 'files.nul'));
  const synthShape = walkTree(path.join(data.dir, 'tree')).shape;
  log(
    `creating the real data set: copying ${args.real}${plan.realFiles ? ` (about ${plan.realFiles} files of it)` : ''} and committing it`,
  );
  const rt = await makeRealTree(
    args.real,
    path.join(data.dir, REAL_REL),
    path.join(root, 'real-files.nul'),
    plan.realFiles,
    plan.writeFiles,
  );
  log(`real data set: ${shapeLine(rt.shape)}`);
  if (!rt.exec) notes.push(`real: no ELF executable reached through ${args.real}/.bin, so no exec figure`);
  if (!rt.writeSrc) notes.push(`real: no package of at most ${plan.writeFiles} files, so no write figure`);
  // Strata's base is a copy, so its pass-through writes never touch the peers' lower directory.
  const sbase = path.join(root, 'sbase');
  await must('cp', ['-a', data.dir, sbase]);
  await refreshIndex(path.join(sbase, 'tree'));
  await refreshIndex(path.join(sbase, REAL_REL));
  // Layer-only names for the negative-entry check: two "tools" switch tests (one per data set).
  const NEG = plan.switchIters * 4 + 8;
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
  const systems: System[] = [{ key: 'native', root: data.dir, out: nativeOut, viaLayer: false, remount: null, remountWarm: null }];
  const peers: Peer[] = [];
  if (avail.kernelOverlay) peers.push(new KernelOverlay('overlayfs', path.join(root, 'overlayfs'), data.dir));
  if (avail.fuseOverlayfs) peers.push(new FuseOverlayfs('fuse_overlayfs', path.join(root, 'fuse-overlayfs'), data.dir));
  if (avail.unionfs) peers.push(new UnionfsFuse('unionfs_fuse', path.join(root, 'unionfs-fuse'), data.dir));
  for (const p of peers) {
    log(`mounting ${LABELS[p.key]} at ${p.mnt}`);
    await p.mount();
    systems.push(p.system());
  }
  const strata = new Strata(cli, path.join(root, 'strata'), sbase);
  await strata.setUp([
    { name: 'tools', from: ltools, map: [['/tool', 'tool']] },
    { name: 'tree', from: ltree, map: [['/mapped', 'tree']] },
    { name: 'nm', from: path.dirname(path.join(data.dir, REAL_REL)), map: [[`/${REAL_MAPPED}`, path.basename(REAL_REL)]] },
  ]);
  log(
    `strata view of ${sbase} at ${strata.mnt}; agent pid ${strata.agentPid}; layers tools (/tool -> tool), tree (/mapped -> tree) and nm (/${REAL_MAPPED} -> tree) active`,
  );
  const remount = () => strata.remount();
  const remountWarm = () => strata.remount(true);
  systems.push({ key: 'strata', root: strata.mnt, out: strata.mnt, viaLayer: false, remount, remountWarm });
  systems.push({ key: 'strata_layer', root: strata.mnt, out: null, viaLayer: true, remount, remountWarm });

  // ---- workloads and switches, one data set after the other ------------------------------------------
  const sets = [
    syntheticSet(plan, systems, data.dir, data.files, data.list, synthShape),
    realSet(plan, systems, rt, REAL_REL, REAL_MAPPED),
  ];
  const results: SetResult[] = [];
  let nextName = 0;
  for (const ds of sets) {
    log(`data set "${ds.title}": ${shapeLine(ds.shape)}`);
    const adds = strata.warmAdds.length;
    const m = await measure(ds, timer, notes);
    const took = strata.warmAdds.slice(adds);
    if (took.length)
      notes.push(
        `${ds.title}: strata view add with its warm-up took median ${fmtMs(median(took))} ms (${took.length} mounts); last: ${strata.lastWarmUp() ?? 'no warm-up logged'}`,
      );
    const ctl = new Control();
    await ctl.connect(socketPath(strata.home, strata.env));
    log(`${ds.title}: switch latency: ${plan.switchIters * 2} switches of layer "tools" over the control socket`);
    const tools = await switchTools(ctl, strata.mnt, plan.switchIters, () => nextName++);
    log(
      `${ds.title}: switch tools: p50 ${fmtMs(tools.p50)} ms, p99 ${fmtMs(tools.p99)} ms, stale first reads ${tools.staleReads}, ` +
        `stale exec ${tools.stale.exec}, stale negative entries ${tools.stale.negative}`,
    );
    log(
      `${ds.title}: switch latency with ${ds.shape.files} files cached under /${ds.mapped}: ${plan.treeSwitchIters * 2} switches of layer "${ds.layer}"`,
    );
    const mapped = await switchMapped(ctl, ds.layer, strata.mnt, ds.mapped, ds.probe, plan.treeSwitchIters);
    ctl.close();
    log(
      `${ds.title}: switch ${ds.layer}: p50 ${fmtMs(mapped.p50)} ms, p99 ${fmtMs(mapped.p99)} ms, stale first reads ${mapped.staleReads}` +
        `${mapped.aborted ? `; stopped early: ${mapped.aborted}` : ''}`,
    );
    results.push({ ds, m, tools, mapped });
  }

  // ---- the agent's own account -------------------------------------------------------------------
  const problems = strata
    .agentLog()
    .split('\n')
    .filter((l) => /fail|error|uncaught|unhandled|E_[A-Z]+|warn/i.test(l))
    .slice(0, 30);
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
  clearInterval(sampler);
  load.push(os.loadavg()[0]);
  const info: RunInfo = {
    date: new Date(t0).toISOString(),
    machine: mach,
    revision: rev,
    quick: args.quick,
    sizes: { files: plan.files, big_mib: plan.bigMiB },
    timer: avail.hyperfine ? 'hyperfine -N (median)' : 'node child_process (median)',
    skipped: SYSTEMS.filter((s) => !systems.some((x) => x.key === s)),
    agentLogProblems: problems,
    notes,
    durationS: Math.round((Date.now() - t0) / 1000),
    load,
  };
  if (args.json) process.stdout.write(JSON.stringify(toJson(info, results[0], results[1])) + '\n');
  else process.stdout.write(toText(info, results));
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
