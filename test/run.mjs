// Runs every suite and ends with one line "N passed, N failed, N skipped" summing them all.
// Suites: the type check (both tsconfigs), lint (eslint, prettier --check), unit tests, integration
// tests (real FUSE mounts, real sockets), the extension-host suite in a real VS Code server
// (test/extension/run.mjs) and the end-to-end test of the packaged extension in code-server and
// Chromium (test/e2e/vsix.e2e.mjs). The last two need code-server in .tools and Chromium, which
// ./dev installs; without them they fail, they do not skip.
import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv[2]; // optional: a suite name
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

/** One passed or failed check made of commands run in turn (all of them, so every problem is shown). */
function check(name, commands) {
  console.log(`\n== ${name}`);
  const bad = commands.filter(([what, bin, args]) => {
    console.log(`  ${what}`);
    return spawnSync(join(root, 'node_modules/.bin', bin), args, { cwd: root, stdio: 'inherit' }).status !== 0;
  });
  if (!bad.length) {
    passed++;
    console.log('  ok');
  } else {
    failed++;
    failures.push(`${name}: ${bad.map(([what]) => what).join('; ')} reported problems`);
  }
}

const typecheck = () =>
  check('typecheck', [
    ['tsc -p tsconfig.json', 'tsc', ['--noEmit', '-p', 'tsconfig.json']],
    ['tsc -p tsconfig.webview.json', 'tsc', ['--noEmit', '-p', 'tsconfig.webview.json']],
  ]);
const lint = () =>
  check('lint', [
    ['eslint', 'eslint', ['.']],
    ['prettier --check', 'prettier', ['--check', '.']],
  ]);

function mocha(name, timeoutMs) {
  const list = files(join(root, 'dist/test', name)).sort();
  console.log(`\n== ${name} (${list.length} files)`);
  if (!list.length) return;
  const tally = join(mkdtempSync(join(tmpdir(), 'strata-tally-')), 'tally.json');
  const mochaArgs = ['--reporter', join(root, 'test/reporter.cjs'), '--timeout', String(timeoutMs), '--exit', ...list];
  const runOnce = () =>
    spawnSync(process.execPath, [join(root, 'node_modules/mocha/bin/mocha.js'), ...mochaArgs], {
      stdio: 'inherit',
      env: { ...process.env, STRATA_TALLY: tally },
      timeout: 40 * 60 * 1000,
    });
  let r = runOnce();
  if (!existsSync(tally) && r.signal !== 'SIGTERM') {
    // The mocha process itself died (seen once: a libuv assertion in the test process, not in
    // the agent). Say so and run the suite once more; its results are what count.
    console.log(`\n!! ${name}: mocha died without results (status ${r.status}, signal ${r.signal}); running the suite once more`);
    r = runOnce();
  }
  if (!existsSync(tally)) {
    failed++;
    failures.push(`${name}: mocha ended without results (status ${r.status}, signal ${r.signal})`);
    return;
  }
  const t = JSON.parse(readFileSync(tally, 'utf8'));
  passed += t.passed;
  failed += t.failed;
  skipped += t.skipped;
  for (const f of t.failures) failures.push(`${name}: ${f.title}: ${f.error}`);
}

/** A script that prints its own results and writes {passed, failed, skipped, failures} to $STRATA_TALLY. */
function script(name, file, timeoutMs) {
  console.log(`\n== ${name} (${file})`);
  const tally = join(mkdtempSync(join(tmpdir(), 'strata-tally-')), 'tally.json');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, file)], {
    stdio: 'inherit',
    env: { ...process.env, STRATA_TALLY: tally },
    timeout: timeoutMs,
    killSignal: 'SIGTERM',
  });
  console.log(`  (${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (!existsSync(tally)) {
    failed++;
    failures.push(`${name}: ended without results (status ${r.status}, signal ${r.signal})`);
    return;
  }
  const t = JSON.parse(readFileSync(tally, 'utf8'));
  rmSync(dirname(tally), { recursive: true, force: true });
  passed += t.passed;
  failed += t.failed;
  skipped += t.skipped;
  for (const f of t.failures) failures.push(`${name}: ${f.title}: ${String(f.error).split('\n')[0]}`);
}

if (!only || only === 'typecheck') typecheck();
if (!only || only === 'lint') lint();
if (!only || only === 'unit') mocha('unit', 20000);
if (!only || only === 'integration') mocha('integration', 120000);
if (!only || only === 'extension') script('extension', 'test/extension/run.mjs', 10 * 60 * 1000);
if (!only || only === 'e2e') script('e2e', 'test/e2e/vsix.e2e.mjs', 10 * 60 * 1000);

if (failures.length) {
  console.log('\nFailures:');
  for (const f of failures) console.log('  - ' + f);
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
