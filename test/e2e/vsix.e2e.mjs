// End to end, as a person would: package the extension (npm run package → strata-<version>.vsix),
// install it into a fresh code-server, open a workspace served by a Strata view in headless
// Chromium, run F1 → "Strata: Activate Layer" → pick the layer, and check the Layers tree, the status
// bar and the file on disk. Saves test-artifacts/e2e-activate.png.
//
//   node test/e2e/vsix.e2e.mjs [--keep]
//
// Prints one line per check, then "N passed, N failed, N skipped"; writes the counts to
// $STRATA_TALLY when set (test/run.mjs sums them).
import { spawnSync } from 'child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import {
  CLI,
  ROOT,
  installExtension,
  launchChromium,
  makeScratch,
  missingTools,
  removeScratch,
  startCodeServer,
  stopAgent,
  tail,
  waitFor,
  withCleanup,
  workbenchUrl,
} from '../../demo/browser/vscode-host.mjs';
import {
  clearToasts,
  focusPick,
  layerRows,
  openStrataView,
  runCommand,
  strataStatusText,
  waitWorkbench,
} from '../../demo/browser/workbench.mjs';
import { zipEntries } from '../../demo/browser/zip-list.mjs';

const keep = process.argv.includes('--keep') || !!process.env.STRATA_KEEP_SCRATCH;
const artifacts = join(ROOT, 'test-artifacts');
const LAYER = 'tool-2';
const REQUIRED_IN_VSIX = [
  'dist/extension.js',
  'dist/agent.js',
  'dist/relay.js',
  'dist/cli.js',
  'dist/webview.js',
  'build/Release/strata-viewd',
  'package.json',
  'media/',
];

const total = { passed: 0, failed: 0, skipped: 0, failures: [] };
let blocked = null; // once a step fails, the checks after it cannot run: they fail with this reason

async function check(title, fn) {
  if (blocked) {
    console.log(`  FAIL ${title}\n       not reached: ${blocked}`);
    total.failed++;
    total.failures.push({ title, error: `not reached: ${blocked}` });
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    total.passed++;
    console.log(`  ok   ${title} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    total.failed++;
    const msg = String(e?.message ?? e);
    total.failures.push({ title, error: msg.slice(0, 2000) });
    console.log(`  FAIL ${title}\n       ${msg.split('\n').join('\n       ')}`);
    blocked = `"${title}" failed`;
  }
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180000, ...opts });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${tail((r.stdout ?? '') + (r.stderr ?? ''))}`);
  return r.stdout;
}

async function main() {
  console.log('\n-- e2e: the packaged extension in code-server, driven from headless Chromium');
  const missing = missingTools();
  if (missing.length) {
    await check('code-server and Chromium are installed', () => {
      throw new Error(missing.join('; '));
    });
    return;
  }

  let vsix;
  await check('npm run package builds strata-<version>.vsix holding the extension, agent, CLI, webview, view server and media', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    vsix = join(ROOT, `strata-${version}.vsix`);
    run('npm', ['run', '--silent', 'package'], { cwd: ROOT });
    if (!existsSync(vsix)) throw new Error(`${vsix} was not written`);
    const entries = zipEntries(vsix).map((e) => e.replace(/^extension\//, ''));
    const absent = REQUIRED_IN_VSIX.filter((f) => !entries.some((e) => (f.endsWith('/') ? e.startsWith(f) : e === f)));
    if (absent.length) throw new Error(`missing from the vsix: ${absent.join(', ')} (.vscodeignore is an allow-list)`);
    const stray = entries.filter(
      (e) => /^(node_modules|test|agent|extension|webview|protocol|bench|docs)\//.test(e) || e.endsWith('.map') || e.endsWith('.ts'),
    );
    if (stray.length) throw new Error(`the vsix holds files it should not: ${stray.slice(0, 10).join(', ')}`);
  });

  await withCleanup(async (cleanups) => {
    const scratch = makeScratch('strata-e2e-');
    cleanups.push(() => (keep ? console.log(`  scratch kept: ${scratch.dir}`) : removeScratch(scratch.dir)));
    const home = join(scratch.dir, 'strata-home');
    const ws = join(scratch.dir, 'workspace');
    const toolFile = join(ws, 'tools/bin/tool');
    const env = { ...scratch.env, STRATA_HOME: home };
    cleanups.push(() => stopAgent(home, env));
    const strata = (...args) => run(process.execPath, [CLI, ...args], { env });

    await check('code-server --install-extension installs the vsix into a fresh extensions dir', () => {
      installExtension(scratch, vsix);
      const dirs = readdirSync(scratch.exts).filter((d) => d.startsWith('strata.strata-'));
      if (!dirs.length) throw new Error(`no strata.strata-* in ${scratch.exts}: ${readdirSync(scratch.exts).join(', ')}`);
    });

    await check(`a Strata home with layer ${LAYER} and an in-place view of the workspace (strata CLI)`, () => {
      mkdirSync(join(ws, 'tools/bin'), { recursive: true });
      writeFileSync(toolFile, '#!/bin/sh\necho "tool 1.0 (from the workspace)"\n', { mode: 0o755 });
      writeFileSync(join(ws, 'README.md'), '# e2e workspace\n');
      const src = join(scratch.dir, 'layer-src');
      mkdirSync(join(src, 'bin'), { recursive: true });
      writeFileSync(join(src, 'bin/tool'), '#!/bin/sh\necho "tool 2.0 (from a Strata layer)"\n', { mode: 0o755 });
      strata('layer', 'create', LAYER, '--from', src, '--version', '2.0');
      strata('layer', 'unmap', LAYER, '/');
      strata('layer', 'map', LAYER, '/tools', '/');
      strata('view', 'add', ws);
      if (!readFileSync(toolFile, 'utf8').includes('tool 1.0')) throw new Error('the view does not serve the workspace before any switch');
    });

    let server, page;
    await check('code-server (--auth none, 127.0.0.1) opens the workspace in headless Chromium', async () => {
      server = await startCodeServer(scratch, { env });
      cleanups.push(() => server.stop());
      const browser = await launchChromium(scratch);
      cleanups.push(() => browser.close());
      page = browser.page;
      await page.goto(workbenchUrl(server, ws));
      await waitWorkbench(page);
    });

    await check('the Strata view shows the layer, and the status bar that no layer is active', async () => {
      await openStrataView(page);
      await waitFor(async () => (await layerRows(page)).some((r) => r.label === LAYER), 30000, `the Layers tree to list ${LAYER}`);
      await waitFor(async () => /no layers/.test(await strataStatusText(page)), 30000, 'the status bar to say "no layers"');
    });

    await check(`F1 → "Strata: Activate Layer" → ${LAYER}: the Layers tree marks it active`, async () => {
      await runCommand(page, 'Strata: Activate Layer');
      const enter = await focusPick(page, LAYER);
      await enter();
      await waitFor(
        async () => {
          const row = (await layerRows(page)).find((r) => r.label === LAYER);
          return row && /(^|\W)active$/.test(row.description) && !/inactive/.test(row.description);
        },
        30000,
        `the ${LAYER} row to be described as active; rows: ${JSON.stringify(await layerRows(page))}`,
      );
    });

    await check('the status bar shows the active layer', async () => {
      await waitFor(async () => (await strataStatusText(page)).includes(LAYER), 15000, `the status bar to name ${LAYER}`);
    });

    await check("the file in the view changed on disk: tools/bin/tool is the layer's", () => {
      const text = readFileSync(toolFile, 'utf8');
      if (!text.includes('tool 2.0 (from a Strata layer)')) throw new Error(`${toolFile} holds: ${text}`);
      const out = run(toolFile, [], {});
      if (!out.includes('tool 2.0')) throw new Error(`running it printed: ${out}`);
    });

    await check('screenshot saved to test-artifacts/e2e-activate.png (the file opened in an editor)', async () => {
      // Show the switched file next to the tree, as a person would look at it.
      await page.keyboard.press('Control+P');
      await page.locator('.quick-input-widget input').fill('tools/bin/tool');
      await page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: 'tool' }).first().waitFor({ timeout: 15000 });
      await page.keyboard.press('Enter');
      await page.locator('.monaco-editor .view-lines', { hasText: 'tool 2.0' }).first().waitFor({ timeout: 15000 });
      await page.mouse.move(700, 500);
      await clearToasts(page);
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'e2e-activate.png') });
    });

    if (total.failed && page) {
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'e2e-failure.png') }).catch(() => {});
      console.log(`  (failure screenshot: test-artifacts/e2e-failure.png; code-server log:\n${tail(server?.output() ?? '', 10)})`);
    }
  });
}

main()
  .catch((e) => {
    total.failed++;
    total.failures.push({ title: 'e2e: the run broke', error: String(e?.stack ?? e).slice(0, 2000) });
    console.log(`  FAIL the run broke: ${e?.stack ?? e}`);
  })
  .finally(() => {
    if (process.env.STRATA_TALLY) writeFileSync(process.env.STRATA_TALLY, JSON.stringify(total));
    console.log(`\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
    process.exit(total.failed ? 1 : 0);
  });
