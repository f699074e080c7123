// Runs a real VS Code extension host here: the VS Code server inside code-server (installed into
// .tools/code-server by scripts/install-code-server.sh) and Debian's headless Chromium through
// playwright-core. Used by the extension test runner, the packaged-extension e2e test, the
// extension benchmark and the demo. Facts behind the choices: /work/shared/vscode-host.md.
import { spawn, spawnSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { createRequire } from 'module';
import { tmpdir } from 'os';
import { dirname, join } from 'path';

/**
 * The repository root: the nearest folder above the running script (test/..., dist/...) whose
 * package.json is Strata's; else above the working directory. (Not import.meta: this module is also
 * bundled into CommonJS by esbuild, where import.meta is empty.)
 */
function findRoot() {
  for (const start of [process.argv[1] && dirname(process.argv[1]), process.cwd()]) {
    for (let dir = start; dir; dir = dirname(dir) === dir ? '' : dirname(dir)) {
      try {
        if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'strata') return dir;
      } catch {
        /* keep looking */
      }
    }
  }
  throw new Error('cannot find the Strata repository root above the running script or the working directory');
}

export const ROOT = findRoot();
const requireHere = createRequire(join(ROOT, 'package.json'));
export const CODE_SERVER_VERSION = '4.100.3';
export const CODE_SERVER_PKG = join(ROOT, '.tools/code-server/node_modules/code-server');
export const SERVER_MAIN = join(CODE_SERVER_PKG, 'lib/vscode/out/server-main.js');
export const CODE_SERVER_ENTRY = join(CODE_SERVER_PKG, 'out/node/entry.js');
export const CHROMIUM = process.env.STRATA_CHROMIUM || '/usr/bin/chromium';
export const CLI = join(ROOT, 'dist/cli.js');

// Flags measured to work for Debian's Chromium in a container (playwright adds --headless itself).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** What is missing to run a VS Code host here, as sentences; empty when all is in place. */
export function missingTools() {
  const missing = [];
  let version;
  try {
    version = JSON.parse(readFileSync(join(CODE_SERVER_PKG, 'package.json'), 'utf8')).version;
  } catch {
    /* not installed */
  }
  if (!existsSync(SERVER_MAIN) || version !== CODE_SERVER_VERSION)
    missing.push(
      `code-server ${CODE_SERVER_VERSION} is not installed in .tools/code-server (run scripts/install-code-server.sh, which ./dev does)`,
    );
  if (!existsSync(CHROMIUM)) missing.push(`Chromium is not at ${CHROMIUM} (Debian package chromium, which ./dev installs)`);
  try {
    requireHere.resolve('playwright-core');
  } catch {
    missing.push('playwright-core is not installed (npm ci)');
  }
  return missing;
}

/**
 * A scratch folder for one run: user/server/extension dirs for VS Code, a browser profile, and an
 * environment whose HOME, XDG dirs and TMPDIR point inside it so nothing lands in the real home.
 * A new temporary folder named prefix*, or the folder `dir` when given. The agent's socket lives under
 * XDG_RUNTIME_DIR or TMPDIR: run the CLI with this same env as VS Code, or the extension finds no agent
 * for the STRATA_HOME and starts a second one.
 */
export function makeScratch(prefix, { dir: fixed } = {}) {
  if (fixed) mkdirSync(fixed, { recursive: true });
  const dir = fixed ?? mkdtempSync(join(process.env.STRATA_SCRATCH_ROOT || tmpdir(), prefix));
  const d = (name) => {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    return p;
  };
  const s = {
    dir,
    user: d('user'),
    server: d('server'),
    exts: d('exts'),
    browser: d('browser'),
    tmp: d('tmp'),
    home: d('home'),
    logs: d('logs'),
  };
  s.env = {
    ...process.env,
    HOME: s.home,
    XDG_CONFIG_HOME: d('xdg/config'),
    XDG_DATA_HOME: d('xdg/data'),
    XDG_CACHE_HOME: d('xdg/cache'),
    TMPDIR: s.tmp,
  };
  delete s.env.XDG_RUNTIME_DIR;
  // A VS Code terminal or task started by an outer VS Code must not leak its IPC hooks in.
  for (const k of Object.keys(s.env)) if (k.startsWith('VSCODE_') && k !== 'VSCODE_EXECUTABLE') delete s.env[k];
  writeSettings(s.user);
  return s;
}

/** Settings for a quiet, deterministic workbench: no welcome page, no telemetry, no update checks. */
export function writeSettings(userDataDir, extra = {}) {
  const settings = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'security.workspace.trust.enabled': false,
    'git.enabled': false,
    'chat.commandCenter.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    ...extra,
  };
  for (const sub of ['User', 'Machine']) {
    mkdirSync(join(userDataDir, sub), { recursive: true });
    writeFileSync(join(userDataDir, sub, 'settings.json'), JSON.stringify(settings, null, 2));
  }
}

/** Resolves when pred() returns a truthy value; rejects after timeoutMs with "timed out: what". */
export async function waitFor(pred, timeoutMs, what, intervalMs = 100) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Starts a process in its own session (so stop() can end the whole group: VS Code leaves extension
 * hosts and watchers behind) with output in logFile, and resolves once a line of its output
 * matches `ready`, with that match.
 */
export async function startGroup(cmd, args, { env, cwd, logFile, ready, timeoutMs = 60000, name }) {
  const out = [];
  const proc = spawn(cmd, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = (d) => {
    out.push(String(d));
    if (logFile) writeFileSync(logFile, out.join(''));
  };
  proc.stdout.on('data', log);
  proc.stderr.on('data', log);
  let exited = null;
  proc.on('exit', (code, signal) => (exited = { code, signal }));
  const group = {
    proc,
    output: () => out.join(''),
    stop: () => killGroup(proc),
  };
  group.match = await waitFor(
    () => {
      if (exited) throw new Error(`${name} exited (${exited.code ?? exited.signal}) before it was ready:\n${tail(out.join(''))}`);
      return out.join('').match(ready);
    },
    timeoutMs,
    `${name} to start; its output:\n${tail(out.join(''))}`,
  );
  return group;
}

/** Ends a process group started by startGroup: SIGTERM, then SIGKILL for what is left. */
export async function killGroup(proc) {
  if (!proc || proc.pid === undefined) return;
  const alive = () => {
    try {
      process.kill(-proc.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    process.kill(-proc.pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + 3000;
  while (alive() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (alive())
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
}

/** The bare VS Code server (the test flags need it: code-server's own CLI rejects them). */
export async function startVscodeServer(scratch, { env = scratch.env, extraArgs = [], timeoutMs = 60000 } = {}) {
  const g = await startGroup(
    process.execPath,
    [
      SERVER_MAIN,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--without-connection-token',
      '--accept-server-license-terms',
      '--enable-smoke-test-driver',
      '--disable-telemetry',
      '--user-data-dir',
      scratch.user,
      '--server-data-dir',
      scratch.server,
      '--extensions-dir',
      scratch.exts,
      ...extraArgs,
    ],
    {
      env,
      cwd: scratch.dir,
      logFile: join(scratch.logs, 'server.log'),
      ready: /Extension host agent listening on (\d+)/,
      timeoutMs,
      name: 'the VS Code server',
    },
  );
  g.port = Number(g.match[1]);
  g.origin = `http://127.0.0.1:${g.port}`;
  g.authority = `127.0.0.1:${g.port}`;
  return g;
}

/** code-server itself, as a person runs it: --auth none on 127.0.0.1, a free port. */
export async function startCodeServer(scratch, { env = scratch.env, folder, port = 0, extraArgs = [], timeoutMs = 60000 } = {}) {
  const g = await startGroup(
    process.execPath,
    [
      CODE_SERVER_ENTRY,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir',
      scratch.user,
      '--extensions-dir',
      scratch.exts,
      ...extraArgs,
      ...(folder ? [folder] : []),
    ],
    {
      env,
      cwd: scratch.dir,
      logFile: join(scratch.logs, 'code-server.log'),
      ready: /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/,
      timeoutMs,
      name: 'code-server',
    },
  );
  g.port = Number(g.match[1]);
  g.origin = `http://127.0.0.1:${g.port}`;
  g.authority = `127.0.0.1:${g.port}`;
  return g;
}

/** `code-server --install-extension FILE` into scratch's extensions dir. */
export function installExtension(scratch, vsix) {
  const r = spawnSync(
    process.execPath,
    [CODE_SERVER_ENTRY, '--user-data-dir', scratch.user, '--extensions-dir', scratch.exts, '--install-extension', vsix],
    { env: scratch.env, cwd: scratch.dir, encoding: 'utf8', timeout: 120000 },
  );
  if (r.status !== 0)
    throw new Error(`code-server --install-extension ${vsix} failed (${r.status ?? r.signal}):\n${tail(r.stdout + r.stderr)}`);
  return r.stdout;
}

/** The workbench URL for a folder, with an optional launch payload (pairs of [name, value]). */
export function workbenchUrl(server, folder, payload) {
  let url = `${server.origin}/?folder=${encodeURIComponent(folder)}`;
  if (payload) url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return url;
}

/** Headless Chromium with a fresh profile in the scratch folder. */
export async function launchChromium(scratch, { viewport = { width: 1400, height: 900 } } = {}) {
  const { chromium } = requireHere('playwright-core');
  const context = await chromium.launchPersistentContext(scratch.browser, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    env: scratch.env,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page, newPage: () => context.newPage(), close: () => context.close().catch(() => {}) };
}

/** Stops the agent of a STRATA_HOME (which unmounts its views); quiet when none runs. */
export function stopAgent(home, env = process.env) {
  if (!existsSync(home) || !existsSync(CLI)) return;
  spawnSync(process.execPath, [CLI, 'agent', 'stop'], { env: { ...env, STRATA_HOME: home }, stdio: 'ignore', timeout: 30000 });
}

/** Lazily unmounts every FUSE mount at or under dir (a safety net after the agents are stopped). */
export function unmountUnder(dir) {
  let mounts;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const points = mounts
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter(Boolean)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(dir + '/'));
  for (const p of points.reverse()) {
    const r = spawnSync('fusermount3', ['-u', '-z', p], { stdio: 'ignore' });
    if (r.status !== 0) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
  }
}

/** Removes a scratch folder once nothing is mounted in it. */
export function removeScratch(dir) {
  unmountUnder(dir);
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* best effort */
  }
}

export function tail(text, lines = 25) {
  return String(text).trimEnd().split('\n').slice(-lines).join('\n');
}

/** Runs fn(cleanup list) and then every cleanup in reverse order, also on SIGINT/SIGTERM. */
export async function withCleanup(fn) {
  const cleanups = [];
  let done = false;
  const runCleanups = async () => {
    if (done) return;
    done = true;
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`cleanup: ${e.message}`);
      }
    }
  };
  const onSignal = (sig) => {
    runCleanups().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(cleanups);
  } finally {
    await runCleanups();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
