// Runs the extension-host suite (dist/test-ext/suite/index.js) inside a real VS Code extension host:
// the VS Code server from .tools/code-server, opened in headless Chromium with the repository root as
// a development extension. The suite writes a results file ({passed, failed, skipped, failures}) to
// $STRATA_EXT_RESULTS; the host's own exit status says nothing, so this judges from that file.
// With VSCODE_EXECUTABLE set, the same suite also runs in that desktop VS Code via @vscode/test-electron.
//
//   node test/extension/run.mjs [--extension DIR] [--tests FILE] [--keep]
//
// Prints each test, then "N passed, N failed, N skipped"; exits non-zero on a failure or a timeout.
// Writes the same counts to $STRATA_TALLY when set (test/run.mjs sums them).
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'fs';
import { join, resolve } from 'path';
import {
  ROOT,
  launchChromium,
  makeScratch,
  missingTools,
  removeScratch,
  startVscodeServer,
  stopAgent,
  tail,
  waitFor,
  withCleanup,
  workbenchUrl,
} from '../../demo/browser/vscode-host.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? resolve(argv[i + 1]) : def;
};
const extensionDir = opt('--extension', ROOT);
const testsFile = opt('--tests', join(extensionDir, 'dist/test-ext/suite/index.js'));
const keep = argv.includes('--keep') || !!process.env.STRATA_KEEP_SCRATCH;
const timeoutMs = Number(process.env.STRATA_EXT_TIMEOUT_MS || 5 * 60 * 1000);

const total = { passed: 0, failed: 0, skipped: 0, failures: [] };

function report(results, label) {
  for (const t of results.tests ?? [])
    console.log(`  ${t.state === 'passed' ? 'ok  ' : t.state === 'failed' ? 'FAIL' : 'skip'} ${t.title}`);
  for (const f of results.failures ?? []) console.log(`  FAIL ${f.title}\n       ${String(f.error).split('\n').join('\n       ')}`);
  total.passed += results.passed | 0;
  total.failed += results.failed | 0;
  total.skipped += results.skipped | 0;
  for (const f of results.failures ?? []) total.failures.push({ title: `${label}: ${f.title}`, error: String(f.error).slice(0, 500) });
}

function fail(title, error) {
  console.log(`  FAIL ${title}\n       ${String(error).split('\n').join('\n       ')}`);
  total.failed++;
  total.failures.push({ title, error: String(error).slice(0, 2000) });
}

/** The workspace the suite opens: a small project with a file a layer could redirect. */
function makeWorkspace(dir) {
  const ws = join(dir, 'workspace');
  mkdirSync(join(ws, 'tools/bin'), { recursive: true });
  writeFileSync(join(ws, 'tools/bin/tool'), '#!/bin/sh\necho "tool 1.0 (from the workspace)"\n', { mode: 0o755 });
  writeFileSync(join(ws, 'README.md'), '# a workspace for the extension-host tests\n');
  return ws;
}

/** The extension host's own log (activation, errors) from the server's user-data dir. */
function extHostLog(userDir) {
  const logs = join(userDir, 'logs');
  try {
    return (
      readdirSync(logs)
        .sort()
        .flatMap((session) => {
          const f = join(logs, session, 'exthost1', 'remoteexthost.log');
          return existsSync(f) ? [readFileSync(f, 'utf8')] : [];
        })
        .join('\n') || '(none written)'
    );
  } catch {
    return '(none written)';
  }
}

// Messages every run prints here (no marketplace, no service worker, sandboxed webviews): not clues.
const NOISE = /open-vsx\.org|ENOTFOUND|ERR_NAME_NOT_RESOLVED|status of 404|ServiceWorker|serviceWorker|allow-same-origin|^\s+at /;

function consoleErrors(lines) {
  return (
    lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => /ERR|rror|Extension Host|exthost/i.test(l) && !NOISE.test(l))
      .join('\n') || '(none)'
  );
}

/** In the browser: the VS Code server's extension host. */
async function runInBrowser() {
  console.log('\n-- VS Code server 1.100 (code-server), extension host driven from headless Chromium');
  await withCleanup(async (cleanups) => {
    const scratch = makeScratch('strata-ext-');
    cleanups.push(() => (keep ? console.log(`  scratch kept: ${scratch.dir}`) : removeScratch(scratch.dir)));
    const home = join(scratch.dir, 'strata-home');
    mkdirSync(home);
    const results = join(scratch.dir, 'results.json');
    const ws = makeWorkspace(scratch.dir);
    // The extension host inherits the server's environment.
    const env = {
      ...scratch.env,
      STRATA_HOME: home,
      STRATA_EXT_RESULTS: results,
      STRATA_EXT_WORKSPACE: ws,
      STRATA_EXT_SCRATCH: scratch.dir,
    };
    cleanups.push(() => stopAgent(home, env));

    const t0 = Date.now();
    const server = await startVscodeServer(scratch, { env });
    cleanups.push(() => server.stop());
    const browser = await launchChromium(scratch);
    cleanups.push(() => browser.close());

    const hostLog = [];
    browser.page.on('console', (m) => hostLog.push(m.text()));
    browser.page.on('pageerror', (e) => hostLog.push(`pageerror: ${e.message}`));
    const remote = (p) => `vscode-remote://${server.authority}${p}`;
    await browser.page.goto(
      workbenchUrl(server, ws, [
        ['extensionDevelopmentPath', remote(extensionDir)],
        ['extensionTestsPath', remote(testsFile)],
      ]),
    );

    try {
      await waitFor(() => existsSync(results), timeoutMs, `the suite to write ${results}`, 250);
    } catch (e) {
      fail(
        'extension host: the suite wrote no results',
        `${e.message}\n-- server log:\n${tail(server.output(), 10)}\n` +
          `-- extension host log:\n${tail(extHostLog(scratch.user), 15)}\n-- browser console (errors):\n${tail(consoleErrors(hostLog), 15)}`,
      );
      return;
    }
    // The file may be mid-write when it appears.
    const parsed = await waitFor(
      () => {
        try {
          return JSON.parse(readFileSync(results, 'utf8'));
        } catch {
          return null;
        }
      },
      10000,
      'a complete results file',
    );
    report(parsed, 'extension host');
    console.log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s, server, browser and suite)`);
  });
}

/** On a desktop VS Code, where one is installed: the same suite through @vscode/test-electron. */
async function runInDesktop() {
  const exe = process.env.VSCODE_EXECUTABLE;
  if (!exe) {
    console.log(
      '\n-- desktop VS Code: not run (set VSCODE_EXECUTABLE to a VS Code binary to run the suite there too;\n   none can be downloaded on this machine)',
    );
    return;
  }
  console.log(`\n-- desktop VS Code at ${exe} (@vscode/test-electron)`);
  const { runTests } = await import('@vscode/test-electron');
  await withCleanup(async (cleanups) => {
    const scratch = makeScratch('strata-ext-desktop-');
    cleanups.push(() => (keep ? console.log(`  scratch kept: ${scratch.dir}`) : removeScratch(scratch.dir)));
    const home = join(scratch.dir, 'strata-home');
    mkdirSync(home);
    const results = join(scratch.dir, 'results.json');
    const ws = makeWorkspace(scratch.dir);
    cleanups.push(() => stopAgent(home, scratch.env));
    try {
      await runTests({
        vscodeExecutablePath: exe,
        extensionDevelopmentPath: extensionDir,
        extensionTestsPath: testsFile,
        launchArgs: [
          ws,
          '--disable-extensions',
          '--user-data-dir',
          scratch.user,
          '--extensions-dir',
          scratch.exts,
          '--disable-workspace-trust',
        ],
        extensionTestsEnv: {
          STRATA_HOME: home,
          STRATA_EXT_RESULTS: results,
          STRATA_EXT_WORKSPACE: ws,
          STRATA_EXT_SCRATCH: scratch.dir,
          HOME: scratch.home,
          TMPDIR: scratch.tmp,
        },
        timeout: timeoutMs,
      });
    } catch (e) {
      if (!existsSync(results)) return fail('desktop VS Code: the suite did not run', e.message);
    }
    if (!existsSync(results)) return fail('desktop VS Code: the suite wrote no results', 'VS Code exited without a results file');
    report(JSON.parse(readFileSync(results, 'utf8')), 'desktop VS Code');
  });
}

async function main() {
  const missing = missingTools();
  if (!existsSync(join(extensionDir, 'package.json'))) missing.push(`no extension manifest at ${extensionDir}/package.json`);
  if (!existsSync(testsFile)) missing.push(`the extension-host suite is not built: ${testsFile} (npm run build)`);
  if (missing.length) {
    fail('extension host: cannot run', missing.join('\n'));
  } else {
    try {
      await runInBrowser();
    } catch (e) {
      fail('extension host: the run broke', e.stack || e.message);
    }
    try {
      await runInDesktop();
    } catch (e) {
      fail('desktop VS Code: the run broke', e.stack || e.message);
    }
  }
  if (process.env.STRATA_TALLY) writeFileSync(process.env.STRATA_TALLY, JSON.stringify(total));
  console.log(`\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  process.exit(total.failed ? 1 : 0);
}

main();
