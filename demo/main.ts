/**
 * The full demo (`./dev demo`, `npm run demo`): two teammates' agents (alice and bob, each with its own
 * STRATA_HOME and in-place view of their checkout of one project), a standalone team relay, two
 * versions of a tool as team layers in one swap slot (strata.team.json in the project), a shell that
 * sees each switch at once, and VS Code in the browser (code-server from .tools, with the packaged
 * extension installed) talking to alice's agent. Everything goes through the real CLI, agents and relay.
 *
 * It prints the address and keeps running; Ctrl-C stops code-server, the relay and both agents, and
 * unmounts. STRATA_DEMO_CHECK=1 runs it without a person: it starts everything, fetches the page over
 * HTTP, opens it in headless Chromium (when there is one), makes one switch on bob's agent and checks
 * that alice's view and her VS Code follow, then stops everything and exits 0 or 1.
 * Each run lives in a folder of its own ($TMPDIR/strata-demo-XXXXXX, or STRATA_DEMO_DIR) and serves on
 * 8080 when free, else any free port (or STRATA_DEMO_PORT), so two demos on one machine leave each
 * other alone; a run clears what killed runs left behind, never a demo that still runs.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import {
  CHROMIUM,
  ROOT,
  Browser,
  Group,
  Server,
  installExtension,
  launchChromium,
  makeScratch,
  missingTools,
  startCodeServer,
  startGroup,
  unmountUnder,
  waitFor,
} from './browser/vscode-host.mjs';
import { layerRows, openStrataView, strataStatusText, treeRows, waitWorkbench } from './browser/workbench.mjs';

const CHECK = !!process.env.STRATA_DEMO_CHECK && process.env.STRATA_DEMO_CHECK !== '0';
/** `./dev demo --nats`: the team over a nats-server (docs/nats/office.conf) instead of `strata relay`. */
const NATS = process.argv.includes('--nats');
const DIR_PREFIX = 'strata-demo-';
const dir = process.env.STRATA_DEMO_DIR
  ? path.resolve(process.env.STRATA_DEMO_DIR)
  : fs.mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}${CHECK ? 'check-' : ''}`));
const cli = path.join(__dirname, 'cli.js');
const TEAM = 'demo';
const SLOT = 'tool';
const LAYERS = [
  { name: 'tool-2', version: '2.0' },
  { name: 'tool-3', version: '3.0' },
];

interface Teammate {
  name: string;
  home: string;
  project: string;
  env: NodeJS.ProcessEnv;
}
const peopleOf = (d: string): Teammate[] =>
  ['alice', 'bob'].map((name) => ({
    name,
    home: path.join(d, name, 'home'),
    project: path.join(d, name, 'project'),
    env: { ...process.env, STRATA_HOME: path.join(d, name, 'home') },
  }));
const people = peopleOf(dir);
const [alice, bob] = people;
/** The demo's own pid ("demo") and the process groups it started, so a later run can end what a killed one left. */
const pidFileOf = (d: string) => path.join(d, 'pids.json');
const pidFile = pidFileOf(dir);

/** Runs the CLI as a teammate and shows the command with its output (or only its first line). */
function strata(who: Teammate, ...args: string[]): string {
  return strataShow(who, Infinity, ...args);
}

function strataShow(who: Teammate, lines: number, ...args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { env: who.env, encoding: 'utf8', cwd: who.project });
  if (r.status !== 0) throw new Error(`strata ${args.join(' ')} (as ${who.name}) failed: ${(r.stderr || r.stdout).trim()}`);
  const out = r.stdout.trim();
  const shown = out.split('\n').slice(0, lines);
  console.log(`  ${who.name}$ strata ${args.join(' ')}${out ? '\n    ' + shown.join('\n    ') : ''}`);
  return out;
}

function writeTool(root: string, version: string, from: string): void {
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bin', 'tool'), `#!/bin/sh\necho "tool ${version} (from ${from})"\n`, { mode: 0o755 });
}

function toolOf(who: Teammate): string {
  return (
    fs
      .readFileSync(path.join(who.project, 'tools/bin/tool'), 'utf8')
      .split('\n')[1]
      ?.replace(/^echo "|"$/g, '') ?? ''
  );
}

// ---- stopping everything ------------------------------------------------------------------------

const cleanups: (() => unknown)[] = [];
let stopping: Promise<void> | null = null;

function stopAll(): Promise<void> {
  stopping ??= (async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        console.error(`  cleanup: ${(e as Error).message}`);
      }
    }
  })();
  return stopping;
}

function stopAgent(who: Teammate): void {
  if (!fs.existsSync(who.home)) return;
  spawnSync(process.execPath, [cli, 'agent', 'stop'], { env: who.env, stdio: 'ignore', timeout: 30000 });
}

function readPids(d: string): Record<string, number> | null {
  try {
    return JSON.parse(fs.readFileSync(pidFileOf(d), 'utf8'));
  } catch {
    return null;
  }
}

function recordPid(name: string, pid: number): void {
  fs.writeFileSync(pidFile, JSON.stringify({ ...readPids(dir), [name]: pid }));
}

function recordGroup(name: string, proc: ChildProcess): void {
  recordPid(name, proc.pid!);
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Ends what killed demos left running: their process groups (by recorded id, if still ours), agents
 * and mounts, then removes their folders. A folder whose demo still runs is left alone (refused when
 * it is the one STRATA_DEMO_DIR names).
 */
function clearLeftovers(): void {
  const tmp = os.tmpdir();
  const dirs = process.env.STRATA_DEMO_DIR
    ? [dir]
    : fs
        .readdirSync(tmp)
        .filter((n) => n.startsWith(DIR_PREFIX))
        .map((n) => path.join(tmp, n))
        .filter((d) => d !== dir);
  for (const d of dirs) {
    const pids = readPids(d);
    if (!pids) continue; // not recorded: not ours to judge
    const owner = pids.demo;
    if (owner && owner !== process.pid && cmdline(owner).includes('demo')) {
      if (d === dir) throw new Error(`the demo with pid ${owner} runs in ${d}: stop it, or set another STRATA_DEMO_DIR`);
      continue;
    }
    for (const [name, pid] of Object.entries(pids)) {
      if (name === 'demo' || !(cmdline(pid).includes(ROOT) || cmdline(pid).includes(cli))) continue;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const who of peopleOf(d)) stopAgent(who);
    unmountUnder(d);
    if (d !== dir) fs.rmSync(d, { recursive: true, force: true });
    else for (const e of fs.readdirSync(d)) fs.rmSync(path.join(d, e), { recursive: true, force: true });
  }
}

// ---- the steps --------------------------------------------------------------------------------------

async function startRelay(secret: string, port: number): Promise<Group & { url: string }> {
  const relay = await startGroup(process.execPath, [cli, 'relay', '--listen', `127.0.0.1:${port}`, '--secret-file', secret], {
    env: process.env,
    cwd: dir,
    logFile: path.join(dir, 'relay.log'),
    ready: /listening on (wss?:\/\/\S+)/,
    timeoutMs: 20000,
    name: 'strata relay',
  });
  recordGroup('relay', relay.proc);
  return Object.assign(relay, { url: relay.match[1] });
}

/** nats-server with docs/nats/office.conf, and a 0600 credentials file per teammate (docs/nats.md). */
async function startNats(port: number): Promise<Group & { url: string; creds: Record<string, string> }> {
  const ndir = path.join(dir, 'nats');
  fs.mkdirSync(ndir, { recursive: true });
  for (const f of ['office.conf', 'accounts.conf']) fs.copyFileSync(path.join(ROOT, 'docs', 'nats', f), path.join(ndir, f));
  const pw = () => Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const passwords = { ACME_ALICE_PASSWORD: pw(), ACME_BOB_PASSWORD: pw(), ACME_CAROL_PASSWORD: pw(), GLOBEX_DAVE_PASSWORD: pw() };
  const env = {
    ...process.env,
    ...passwords,
    NATS_PORT: String(port),
    NATS_WS_PORT: String(await anyFreePort()),
    NATS_STORE: path.join(ndir, 'store'),
  };
  const g = await startGroup('nats-server', ['-c', path.join(ndir, 'office.conf')], {
    env,
    cwd: ndir,
    logFile: path.join(dir, 'nats.log'),
    ready: /Server is ready/,
    timeoutMs: 20000,
    name: 'nats-server',
  });
  recordGroup('nats', g.proc);
  const creds: Record<string, string> = {};
  for (const [name, password] of [
    ['alice', passwords.ACME_ALICE_PASSWORD],
    ['bob', passwords.ACME_BOB_PASSWORD],
  ]) {
    creds[name] = path.join(ndir, `${name}.json`);
    fs.writeFileSync(creds[name], JSON.stringify({ user: name, password }) + '\n', { mode: 0o600 });
  }
  return Object.assign(g, { url: `nats://127.0.0.1:${port}`, creds });
}

/** A port nothing listens on now (the relay's, chosen before the team file names it). */
function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function freePort(preferred: number): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(0));
    s.listen(preferred, '127.0.0.1', () => s.close(() => resolve(preferred)));
  });
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (d: string) => (body += d))
        .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(15000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** Waits until alice's view serves the version `want` of the tool; returns how long that took. */
async function aliceFollows(want: string, t0: number): Promise<number> {
  await waitFor(
    () => toolOf(alice).includes(`tool ${want}`),
    15000,
    `alice's view to serve tool ${want} (it serves: ${toolOf(alice)})`,
    20,
  );
  return Date.now() - t0;
}

async function main(): Promise<void> {
  // Chromium is needed only by the check; code-server always.
  const missing = missingTools().filter((m) => !m.includes('Chromium') && !m.includes('playwright'));
  if (missing.length) throw new Error(missing.join('; '));

  fs.mkdirSync(dir, { recursive: true });
  clearLeftovers();
  recordPid('demo', process.pid);
  cleanups.push(() => {
    unmountUnder(dir);
    if (CHECK) fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const who of people) cleanups.push(() => stopAgent(who));
  console.log(`Strata demo in ${dir}${CHECK ? ' (check mode)' : ''}\n`);

  // One project, checked out by both teammates. tools/ is what the layers replace.
  for (const who of people) {
    writeTool(path.join(who.project, 'tools'), '1.0', 'the project');
    fs.writeFileSync(
      path.join(who.project, 'README.md'),
      `# demo project (${who.name}'s checkout)\n\n\`tools/bin/tool\` is served by Strata: switch layers and run it again.\n`,
    );
  }
  for (const l of LAYERS) writeTool(path.join(dir, 'layer-src', l.name), l.version, 'a Strata layer');

  console.log('1. alice captures two versions of the tool as layers; bob imports them (as from another machine)');
  for (const l of LAYERS) {
    strata(
      alice,
      'layer',
      'create',
      l.name,
      '--from',
      path.join(dir, 'layer-src', l.name),
      '--map',
      '/tools=/',
      '--version',
      l.version,
      '--description',
      `the tool, version ${l.version}`,
    );
    const archive = path.join(dir, `${l.name}.tar.gz`);
    strata(alice, 'layer', 'export', l.name, archive);
    strata(bob, 'layer', 'import', archive);
  }

  console.log('\n2. alice writes the team file (both layers in one swap slot) and a new secret; a standalone team relay');
  const secret = path.join(dir, 'team.secret');
  const relayUrl = `${NATS ? 'nats' : 'ws'}://127.0.0.1:${await anyFreePort()}`;
  strata(
    alice,
    'team',
    'init',
    '--team',
    TEAM,
    '--relay',
    relayUrl,
    ...LAYERS.flatMap((l) => ['--layer', l.name]),
    '--slot',
    `${SLOT}=${LAYERS.map((l) => l.name).join(',')}`,
    '--secret-file',
    secret,
    '--new-secret',
  );
  fs.copyFileSync(path.join(alice.project, 'strata.team.json'), path.join(bob.project, 'strata.team.json'));
  console.log('  (bob gets strata.team.json with the project, and the secret over a safe channel)');
  const relayPort = Number(new URL(relayUrl).port);
  const nats = NATS ? await startNats(relayPort) : null;
  const relay = nats ?? (await startRelay(secret, relayPort));
  cleanups.push(() => relay.stop());
  console.log(
    nats
      ? `  $ nats-server -c ${path.join(dir, 'nats', 'office.conf')}   # docs/nats/office.conf; credentials per teammate (chmod 600)`
      : `  $ strata relay --listen 127.0.0.1:${relayPort} --secret-file ${secret}\n    ${relay.output().trim().split('\n')[0]}`,
  );

  // (The CLI reads strata.team.json itself and sends its text, so joining works before or after
  // the views are mounted over the checkouts.)
  console.log('\n3. Both join the team');
  for (const who of people) {
    const creds = nats ? ['--credentials', nats.creds[who.name]] : [];
    strata(who, 'team', 'join', relay.url, '--secret-file', secret, ...creds, '--name', who.name);
  }
  await waitFor(
    () => {
      const st = JSON.parse(
        execFileSync(process.execPath, [cli, 'team', 'status', '--json'], { env: alice.env, encoding: 'utf8', cwd: alice.project }),
      );
      return (st.peers ?? []).some((p: { active: string[] | null; connection: string }) => p.active !== null && p.connection !== 'gone');
    },
    20000,
    'alice to see bob as a peer',
  );

  console.log('\n4. Each serves their checkout through Strata, in place');
  for (const who of people) strata(who, 'view', 'add', who.project);

  console.log(`\n5. A shell of alice's, started now in ${alice.project}/tools/bin, and bob switching the team`);
  const shell = spawn('bash', ['--noprofile', '--norc'], {
    cwd: path.join(alice.project, 'tools/bin'),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  cleanups.push(() => shell.kill());
  let buf = '';
  shell.stdout!.on('data', (d) => (buf += String(d)));
  const inShell = async (cmd: string): Promise<void> => {
    buf = '';
    shell.stdin!.write(`${cmd}; echo __end__\n`);
    await waitFor(() => buf.includes('__end__'), 10000, `the shell to run ${cmd}`, 10);
    console.log(`  alice's shell $ ${cmd}\n    ${buf.replace('__end__', '').trim()}`);
  };
  await inShell('./tool');
  let t0 = Date.now();
  strata(bob, 'activate', 'tool-2');
  console.log(`  alice's view followed in ${await aliceFollows('2.0', t0)} ms`);
  await inShell('./tool');
  t0 = Date.now();
  strata(bob, 'swap', 'tool-2', 'tool-3');
  console.log(`  alice's view followed in ${await aliceFollows('3.0', t0)} ms`);
  await inShell('./tool');
  shell.stdin!.end();
  strata(alice, 'team', 'status');

  console.log("\n6. VS Code in the browser: code-server with the packaged extension, talking to alice's agent");
  const scratch = makeScratch('', { dir: path.join(dir, 'vscode') });
  const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  // The same packaging as `npm run package` (its flags live in package.json only).
  const pack = spawnSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm run package failed:\n${pack.stdout}${pack.stderr}`);
  const vsix = path.join(ROOT, `strata-${version}.vsix`);
  console.log(`  $ npm run package   # ${path.basename(vsix)}`);
  installExtension(scratch, vsix);
  console.log(`  $ code-server --install-extension ${path.basename(vsix)}`);
  const port = await freePort(Number(process.env.STRATA_DEMO_PORT ?? 8080));
  // The agent's socket lives under XDG_RUNTIME_DIR or TMPDIR: VS Code must see the ones the CLI saw,
  // or the extension would find no agent for alice's home and start a second one.
  const vscodeEnv: NodeJS.ProcessEnv = { ...scratch.env, STRATA_HOME: alice.home };
  for (const k of ['TMPDIR', 'XDG_RUNTIME_DIR']) {
    if (process.env[k] === undefined) delete vscodeEnv[k];
    else vscodeEnv[k] = process.env[k];
  }
  const server: Server = await startCodeServer(scratch, { env: vscodeEnv, folder: alice.project, port });
  recordGroup('code-server', server.proc);
  cleanups.push(() => server.stop());
  const address = `${server.origin}/?folder=${encodeURIComponent(alice.project)}`;
  console.log(`  $ STRATA_HOME=${alice.home} code-server --auth none --bind-addr 127.0.0.1:${server.port} ${alice.project}`);

  if (CHECK) {
    await check(server, address);
    return;
  }
  console.log(`
VS Code (alice) is at:  ${address}
  (from another machine: ssh -L ${server.port}:127.0.0.1:${server.port} THIS-HOST, then open that address)
Try: the Strata view in the activity bar; F1 → "Strata: Swap Layer…" or "Strata: Activate Layer…".
Bob's view follows alice's switches of team layers, and alice's VS Code follows bob's:
  STRATA_HOME=${bob.home} node ${cli} swap tool-3 tool-2
  cat ${path.join(bob.project, 'tools/bin/tool')}
Ctrl-C stops code-server, the relay and both agents, and unmounts the views; ${dir} stays
for its logs until the next demo clears it.`);
  up = true;
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    server.proc.once('exit', () => {
      if (!stopping) console.log('code-server exited');
      resolve();
    });
  });
  console.log('\nStopping: code-server, the relay, both agents (unmounting their views)');
}

/** STRATA_DEMO_CHECK: the page over HTTP, then (with Chromium) the workbench following a switch made on bob's agent. */
async function check(server: Server, address: string): Promise<void> {
  const res = await httpGet(address);
  if (res.status !== 200 || !/vscode|workbench/i.test(res.body))
    throw new Error(`GET ${address} answered ${res.status}: ${res.body.slice(0, 200)}`);
  console.log(`  check: GET ${address} → ${res.status}, ${res.body.length} bytes of workbench page`);

  let browser: Browser | null = null;
  if (fs.existsSync(CHROMIUM)) {
    const scratch = makeScratch('strata-demo-browser-');
    cleanups.push(() => fs.rmSync(scratch.dir, { recursive: true, force: true }));
    browser = await launchChromium(scratch);
    cleanups.push(() => browser?.close());
    await browser.page.goto(address);
    await waitWorkbench(browser.page);
    await openStrataView(browser.page);
    await waitFor(
      async () => (await strataStatusText(browser!.page)).includes('tool-3'),
      30000,
      "alice's VS Code status bar to show tool-3",
    );
    console.log(`  check: alice's VS Code shows "${await strataStatusText(browser.page)}"`);
  } else {
    console.log(`  check: no Chromium at ${CHROMIUM}; the workbench itself is not checked`);
  }

  const t0 = Date.now();
  strata(bob, 'swap', 'tool-3', 'tool-2');
  console.log(`  check: alice's view followed bob's switch in ${await aliceFollows('2.0', t0)} ms: ${toolOf(alice)}`);
  if (browser) {
    const page = browser.page;
    await waitFor(async () => (await strataStatusText(page)).includes('tool-2'), 15000, "alice's VS Code status bar to follow to tool-2");
    await waitFor(
      async () => (await layerRows(page)).some((r) => r.label === 'tool-2' && /(^|\W)active$/.test(r.description)),
      15000,
      'the Layers tree to mark tool-2 active',
    );
    await waitFor(
      async () => (await treeRows(page, 'Team')).some((r) => /active/i.test(r.label) && r.description.includes('tool-2')),
      15000,
      `the Team view to show tool-2 as the team's active set (rows: ${JSON.stringify(await treeRows(page, 'Team'))})`,
    );
    console.log(`  check: alice's VS Code followed in ${Date.now() - t0} ms: status bar "${await strataStatusText(page)}"`);
    fs.mkdirSync(path.join(ROOT, 'test-artifacts'), { recursive: true });
    await page.mouse.move(700, 500);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(ROOT, 'test-artifacts/demo.png') });
    console.log('  check: screenshot test-artifacts/demo.png');
  }
  console.log('\ndemo check: ok');
}

let up = false;
let signalled = false;
// A signal while setting up stops what was started and leaves; once the demo is up, Ctrl-C is how it
// ends: main() resolves and everything is stopped the normal way.
const onSignal = (): void => {
  if (up || signalled) return;
  signalled = true;
  console.log('\ninterrupted: stopping what was started');
  void stopAll().finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

main()
  .then(async () => {
    await stopAll();
    process.exit(0);
  })
  .catch(async (e) => {
    console.error(`\ndemo failed: ${(e as Error).message}`);
    await stopAll();
    process.exit(1);
  });
