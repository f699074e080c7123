// Runs every suite and ends with one line "N passed, N failed, N skipped" summing them all.
// Suites: the type check, unit tests, then integration tests (real FUSE mounts, real sockets).
import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv[2]; // optional: a suite name
let passed = 0, failed = 0, skipped = 0;
const failures = [];

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : []);
}

function typecheck() {
  console.log('\n== typecheck (tsc --noEmit)');
  const r = spawnSync(join(root, 'node_modules/.bin/tsc'), ['--noEmit', '-p', root], { stdio: 'inherit' });
  if (r.status === 0) { passed++; console.log('  ok'); } else { failed++; failures.push('typecheck: tsc --noEmit reported errors'); }
}

function mocha(name, timeoutMs) {
  const list = files(join(root, 'dist/test', name)).sort();
  console.log(`\n== ${name} (${list.length} files)`);
  if (!list.length) return;
  const tally = join(mkdtempSync(join(tmpdir(), 'strata-tally-')), 'tally.json');
  const r = spawnSync(process.execPath, [join(root, 'node_modules/mocha/bin/mocha.js'), '--reporter', join(root, 'test/reporter.cjs'),
    '--timeout', String(timeoutMs), '--exit', ...list], { stdio: 'inherit', env: { ...process.env, STRATA_TALLY: tally }, timeout: 40 * 60 * 1000 });
  if (!existsSync(tally)) {
    failed++;
    failures.push(`${name}: mocha ended without results (status ${r.status}, signal ${r.signal})`);
    return;
  }
  const t = JSON.parse(readFileSync(tally, 'utf8'));
  passed += t.passed; failed += t.failed; skipped += t.skipped;
  for (const f of t.failures) failures.push(`${name}: ${f.title}: ${f.error}`);
}

if (!only || only === 'typecheck') typecheck();
if (!only || only === 'unit') mocha('unit', 20000);
if (!only || only === 'integration') mocha('integration', 120000);

if (failures.length) {
  console.log('\nFailures:');
  for (const f of failures) console.log('  - ' + f);
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
