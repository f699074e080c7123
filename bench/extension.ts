/**
 * The VS Code extension in a real extension host: how long activation takes, and how long from the
 * palette command to the Layers tree and the status bar showing the new state.
 *
 *   npm run bench:extension [-- --json] [-- --runs N] [-- --quick]
 *
 * Each run loads the workbench afresh (VS Code server from .tools/code-server, the repository as the
 * development extension, headless Chromium), so each run has a new extension host and a new activation.
 *  - activation_ms: the extension host's own figures, read from "Developer: Startup Performance"
 *    (its Extension Activation Stats table): loading the code + the activate() call + the time until
 *    what activate() returned resolved. The same numbers back "Developer: Show Running Extensions"
 *    (which shows only the first two). The agent connection is made after activate() returns.
 *  - command_to_tree_ms / command_to_status_ms: F1 → "Strata: Activate Layer" → the layer is focused
 *    in the quick pick; from the Enter keydown to the Layers row reading "active" / the status bar item
 *    naming the layer, both taken with the page's clock (a MutationObserver), so the test process's
 *    round trips are not counted. The layer is deactivated with the CLI between runs.
 * Medians over the runs. Loopback only; every wait is bounded.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import {
  CLI,
  ROOT,
  Page,
  Scratch,
  launchChromium,
  makeScratch,
  missingTools,
  removeScratch,
  startVscodeServer,
  stopAgent,
  waitFor,
  withCleanup,
  workbenchUrl,
} from '../demo/browser/vscode-host.mjs';
import {
  armSwitchTimer,
  focusPick,
  openStrataView,
  readActivationTimes,
  readSwitchTimer,
  runCommand,
  strataStatusText,
  waitWorkbench,
} from '../demo/browser/workbench.mjs';

const HELP = `usage: npm run bench:extension -- [--json] [--runs N] [--quick]
  --json     print exactly one JSON object on stdout (progress goes to stderr)
  --runs N   fresh workbench loads to take the median of (default 7; --quick: 3)
`;
const LAYER = 'tool-2';
const EXTENSION_ID = 'strata.strata';

interface Run {
  activation: { loadCode: number; callActivate: number; finishActivate: number; event: string };
  tree: number;
  status: number;
}

function log(msg: string): void {
  process.stderr.write(`[bench:extension] ${msg}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

/** A Strata home with one layer whose /tools replaces the workspace's, and an in-place view of the workspace. */
function prepare(scratch: Scratch): { env: NodeJS.ProcessEnv; ws: string; home: string } {
  const home = path.join(scratch.dir, 'strata-home');
  const ws = path.join(scratch.dir, 'workspace');
  const env = { ...scratch.env, STRATA_HOME: home };
  const src = path.join(scratch.dir, 'layer-src');
  fs.mkdirSync(path.join(ws, 'tools/bin'), { recursive: true });
  fs.writeFileSync(path.join(ws, 'tools/bin/tool'), '#!/bin/sh\necho "tool 1.0"\n', { mode: 0o755 });
  fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(src, 'bin/tool'), '#!/bin/sh\necho "tool 2.0"\n', { mode: 0o755 });
  const strata = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { env, stdio: 'pipe' });
  strata('layer', 'create', LAYER, '--from', src, '--version', '2.0');
  strata('layer', 'unmap', LAYER, '/');
  strata('layer', 'map', LAYER, '/tools', '/');
  strata('view', 'add', ws);
  return { env, ws, home };
}

async function oneRun(page: Page, url: string, env: NodeJS.ProcessEnv): Promise<Run> {
  await page.goto(url, { timeout: 60000 });
  await waitWorkbench(page);
  await openStrataView(page);
  await waitFor(async () => /no layers/.test(await strataStatusText(page)), 30000, 'the status bar to show the agent with no layer active');
  const activation = await readActivationTimes(page, EXTENSION_ID);

  await runCommand(page, 'Strata: Activate Layer');
  const enter = await focusPick(page, LAYER);
  await armSwitchTimer(page, LAYER);
  await enter();
  const t = await readSwitchTimer(page);

  execFileSync(process.execPath, [CLI, 'deactivate', LAYER], { env, stdio: 'pipe' });
  await waitFor(async () => /no layers/.test(await strataStatusText(page)), 15000, 'the status bar to follow the deactivation');
  return { activation, tree: t.tree, status: t.status };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(HELP);
    return;
  }
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
  const ri = argv.indexOf('--runs');
  const runs = ri >= 0 ? Number(argv[ri + 1]) : quick ? 3 : 7;
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error('--runs needs a positive integer');
  const missing = missingTools();
  if (!fs.existsSync(path.join(ROOT, 'dist/extension.js'))) missing.push('dist/extension.js is not built (npm run build)');
  if (missing.length) throw new Error(missing.join('; '));

  const started = Date.now();
  const results = await withCleanup(async (cleanups) => {
    const scratch = makeScratch('strata-bench-ext-');
    cleanups.push(() => removeScratch(scratch.dir));
    const { env, ws, home } = prepare(scratch);
    cleanups.push(() => stopAgent(home, env));
    const server = await startVscodeServer(scratch, { env });
    cleanups.push(() => server.stop());
    const browser = await launchChromium(scratch);
    cleanups.push(() => browser.close());
    const url = workbenchUrl(server, ws, [['extensionDevelopmentPath', `vscode-remote://${server.authority}${ROOT}`]]);

    // One load to warm the server's and the browser's caches; not counted.
    log('warm-up load');
    await oneRun(browser.page, url, env);
    const out: Run[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await oneRun(browser.page, url, env);
      const a = r.activation;
      log(
        `run ${i + 1}/${runs}: activation ${a.loadCode}+${a.callActivate}+${a.finishActivate} ms (${a.event}), command → tree ${r1(r.tree)} ms, → status bar ${r1(r.status)} ms`,
      );
      out.push(r);
    }
    return out;
  });

  const act = results.map((r) => r.activation.loadCode + r.activation.callActivate + r.activation.finishActivate);
  const out = {
    date: new Date().toISOString(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      node: process.version,
      vscode: '1.100.3 (code-server 4.100.3 server, headless Chromium)',
    },
    command: `npm run bench:extension${argv.length ? ' -- ' + argv.join(' ') : ''}`,
    runs,
    seconds: Math.round((Date.now() - started) / 1000),
    activation_ms: median(act),
    activation_load_code_ms: median(results.map((r) => r.activation.loadCode)),
    activation_call_ms: median(results.map((r) => r.activation.callActivate)),
    activation_finish_ms: median(results.map((r) => r.activation.finishActivate)),
    activation_event: results[0].activation.event,
    command_to_tree_ms: r1(median(results.map((r) => r.tree))),
    command_to_status_ms: r1(median(results.map((r) => r.status))),
    activation_ms_runs: act,
    command_to_tree_ms_runs: results.map((r) => r1(r.tree)),
    command_to_status_ms_runs: results.map((r) => r1(r.status)),
  };
  if (json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  process.stdout.write(
    [
      `Strata extension benchmark, ${out.date} (${runs} fresh workbench loads, medians)`,
      `machine: ${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}; VS Code ${out.machine.vscode}`,
      `activation:              ${out.activation_ms} ms  (load code ${out.activation_load_code_ms} + activate() ${out.activation_call_ms} + resolve ${out.activation_finish_ms}; event ${out.activation_event}; runs ${act.join(', ')})`,
      `command → Layers tree:   ${out.command_to_tree_ms} ms  (runs ${out.command_to_tree_ms_runs.join(', ')})`,
      `command → status bar:    ${out.command_to_status_ms} ms  (runs ${out.command_to_status_ms_runs.join(', ')})`,
    ].join('\n') + '\n',
  );
}

main().catch((e) => {
  log(`failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
