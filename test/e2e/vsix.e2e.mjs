/* global document -- functions passed to page.evaluate() run in the browser page */
// End to end, as a person would: package the extension (npm run package → strata-<version>.vsix),
// install it into a fresh code-server, open a workspace served by a Strata view in headless
// Chromium, and check that VS Code follows every switch with no manual refresh:
//  - a switch from the CLI: the open editor of tools/bin/tool and the Explorer (a folder only the
//    layer has) follow;
//  - F1 → "Strata: Activate Layer" → the layer: the Layers tree, the status bar, the file on disk;
//  - a teammate's switch (a relay and a second agent): the editor and the Explorer follow, and a
//    notification says who did what, with Undo and Hold;
//  - the Layer Editor fits the side bar, and saving the team layer there warns first; the Team view
//    then shows the drift.
// Saves test-artifacts/e2e-activate.png, e2e-follow-cli.png, e2e-teammate.png and e2e-drift.png.
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
  writeSettings,
} from '../../demo/browser/vscode-host.mjs';
import {
  clearToasts,
  focusPick,
  layerRows,
  openStrataView,
  runCommand as runCommandOnce,
  strataStatusText,
  treeRows,
  waitWorkbench,
} from '../../demo/browser/workbench.mjs';
import { zipEntries } from '../../demo/browser/zip-list.mjs';
import {
  answerDialog,
  clickTreeRow,
  digestOf,
  editorText,
  expandExplorerFolder,
  explorerRows,
  layerEditorFrame,
  readJson,
  startRelay,
  waitToast,
} from './follow.mjs';

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

/** F1 and a command; again (up to 3 times) when the palette closed under the test (a view taking the focus as it opens). */
async function runCommand(page, title) {
  for (let i = 1; ; i++) {
    try {
      return await runCommandOnce(page, title, 10000);
    } catch (e) {
      if (i === 3) throw e;
      await page.keyboard.press('Escape');
    }
  }
}

/** The extension's own log channel ("Strata"), as the extension host wrote it under the user data dir. */
function strataLog(dir) {
  const found = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/Strata\.log$/.test(e.name)) found.push(join(d, e.name));
    }
  };
  try {
    walk(dir);
  } catch {
    /* no logs yet */
  }
  return found.map((f) => readFileSync(f, 'utf8')).join('\n') || '(none written)';
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
    // One Explorer row per folder (not "tools/bin"), so the rows name what the test looks for.
    writeSettings(scratch.user, { 'explorer.compactFolders': false });
    cleanups.push(() => (keep ? console.log(`  scratch kept: ${scratch.dir}`) : removeScratch(scratch.dir)));
    const home = join(scratch.dir, 'strata-home');
    const ws = join(scratch.dir, 'workspace');
    const toolFile = join(ws, 'tools/bin/tool');
    const env = { ...scratch.env, STRATA_HOME: home };
    cleanups.push(() => stopAgent(home, env));
    const strata = (...args) => run(process.execPath, [CLI, ...args], { env });
    const layerSrc = join(scratch.dir, 'layer-src');
    let teamFile;
    // The same layer for both agents (the same content: the same digest).
    const makeLayer = (cli) => {
      cli('layer', 'create', LAYER, '--from', layerSrc, '--version', '2.0');
      cli('layer', 'unmap', LAYER, '/');
      cli('layer', 'map', LAYER, '/tools', '/');
    };
    const shot = async (name) => {
      mkdirSync(artifacts, { recursive: true });
      await page.waitForTimeout(400); // toasts animate in
      await page.screenshot({ path: join(artifacts, name) });
    };

    await check('code-server --install-extension installs the vsix into a fresh extensions dir', () => {
      installExtension(scratch, vsix);
      const dirs = readdirSync(scratch.exts).filter((d) => d.startsWith('strata.strata-'));
      if (!dirs.length) throw new Error(`no strata.strata-* in ${scratch.exts}: ${readdirSync(scratch.exts).join(', ')}`);
    });

    await check(`a Strata home with layer ${LAYER} and an in-place view of the workspace (strata CLI)`, () => {
      mkdirSync(join(ws, 'tools/bin'), { recursive: true });
      writeFileSync(toolFile, '#!/bin/sh\necho "tool 1.0 (from the workspace)"\n', { mode: 0o755 });
      writeFileSync(join(ws, 'README.md'), '# e2e workspace\n');
      mkdirSync(join(layerSrc, 'bin'), { recursive: true });
      mkdirSync(join(layerSrc, 'lib'), { recursive: true });
      writeFileSync(join(layerSrc, 'bin/tool'), '#!/bin/sh\necho "tool 2.0 (from a Strata layer)"\n', { mode: 0o755 });
      writeFileSync(join(layerSrc, 'lib/libtool.txt'), 'only the layer has tools/lib\n');
      makeLayer(strata);
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

    const explorerHas = async (label) => (await explorerRows(page)).some((r) => r.label === label);
    await check("before any switch: the Explorer shows the workspace's tools, an editor tools/bin/tool 1.0", async () => {
      await runCommand(page, 'View: Show Explorer');
      await expandExplorerFolder(page, 'tools');
      await waitFor(() => explorerHas('bin'), 15000, 'the Explorer to list tools/bin');
      if (await explorerHas('lib')) throw new Error('the Explorer lists lib before the layer is active');
      await page.keyboard.press('Control+P');
      await page.locator('.quick-input-widget input').fill('tools/bin/tool');
      await page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: 'tool' }).first().waitFor({ timeout: 15000 });
      await page.keyboard.press('Enter');
      await waitFor(async () => (await editorText(page)).includes('tool 1.0'), 15000, 'the editor to show tool 1.0');
    });

    await check('a switch from the CLI: the open editor and the Explorer follow, with no refresh', async () => {
      strata('activate', LAYER);
      await waitFor(
        async () => (await editorText(page)).includes('tool 2.0'),
        15000,
        `the editor to show tool 2.0 (it shows: ${await editorText(page)})`,
      );
      await waitFor(() => explorerHas('lib'), 15000, `the Explorer to list tools/lib (rows: ${JSON.stringify(await explorerRows(page))})`);
      await shot('e2e-follow-cli.png');
      strata('deactivate', LAYER);
      await waitFor(async () => (await editorText(page)).includes('tool 1.0'), 15000, 'the editor to show tool 1.0 again');
      await waitFor(async () => !(await explorerHas('lib')), 15000, 'the Explorer to drop tools/lib');
    });

    await check(`F1 → "Strata: Activate Layer" → ${LAYER}: the Layers tree marks it active, and the open editor follows`, async () => {
      await openStrataView(page);
      const restored = () => (strataLog(scratch.user).match(/refreshed the Explorer \(and showed the Strata views again\)/g) ?? []).length;
      const before = restored();
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
      await waitFor(async () => (await editorText(page)).includes('tool 2.0'), 15000, 'the editor to show tool 2.0');
      // The Explorer is refreshed by showing it, then the Strata views are shown again: let that end
      // before the next step shows the Explorer (a person does not click within that half second).
      await waitFor(() => restored() > before, 15000, 'the extension to refresh the Explorer and show the Strata views again');
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

    await check('the Explorer, refreshed while the Strata views showed, lists tools/lib when shown again', async () => {
      await runCommand(page, 'View: Show Explorer');
      await waitFor(() => explorerHas('lib'), 15000, `the Explorer to list tools/lib (rows: ${JSON.stringify(await explorerRows(page))})`);
    });

    await check('screenshot saved to test-artifacts/e2e-activate.png (the file opened in an editor)', async () => {
      await openStrataView(page);
      await page.mouse.move(700, 500);
      await clearToasts(page);
      await shot('e2e-activate.png');
    });

    // ---- the team: a relay, and a second agent ("bob") with the same layer -----------------------
    const bobHome = join(scratch.dir, 'bob-home');
    const bobEnv = { ...scratch.env, STRATA_HOME: bobHome, STRATA_TEAM_HEARTBEAT_MS: '500' };
    cleanups.push(() => stopAgent(bobHome, bobEnv));
    const bob = (...args) => run(process.execPath, [CLI, ...args], { env: bobEnv });
    await check("a team: a relay, bob's agent with the same layer, both joined (strata CLI)", async () => {
      strata('deactivate', LAYER);
      await waitFor(async () => (await editorText(page)).includes('tool 1.0'), 15000, 'the editor to show tool 1.0 again');
      const secretFile = join(scratch.dir, 'team.secret');
      writeFileSync(secretFile, 'e2e team secret, 16+ characters', { mode: 0o600 });
      const relay = await startRelay(secretFile, scratch.env);
      cleanups.push(() => relay.stop());
      makeLayer(bob);
      const digest = await digestOf(join(home, 'layers', LAYER), join(scratch.dir, 'digest'));
      const bobDigest = await digestOf(join(bobHome, 'layers', LAYER), join(scratch.dir, 'digest'));
      if (digest !== bobDigest) throw new Error(`the layer differs between the agents: ${digest} ${bobDigest}`);
      teamFile = join(scratch.dir, 'strata.team.json');
      writeFileSync(
        teamFile,
        JSON.stringify({ format: 1, team: 'e2e', relays: [relay.url], layers: { [LAYER]: { digest } }, defaults: [], slots: {} }, null, 2) +
          '\n',
      );
      strata('team', 'join', relay.url, '--secret-file', secretFile, '--team-file', teamFile, '--name', 'alice');
      bob('team', 'join', relay.url, '--secret-file', secretFile, '--team-file', teamFile, '--name', 'bob');
      await waitFor(
        () => JSON.parse(run(process.execPath, [CLI, 'team', 'status', '--json'], { env })).peers?.some((p) => p.user === 'bob'),
        30000,
        'alice to see bob',
      );
    });

    await check("a teammate's switch: the open editor and the Explorer follow, and a notification says who did what", async () => {
      await runCommand(page, 'View: Show Explorer');
      bob('activate', LAYER);
      await waitFor(
        async () => (await editorText(page)).includes('tool 2.0'),
        20000,
        `the editor to show tool 2.0 (it shows: ${await editorText(page)})`,
      );
      await waitFor(() => explorerHas('lib'), 15000, `the Explorer to list tools/lib (rows: ${JSON.stringify(await explorerRows(page))})`);
      const toast = await waitToast(page, /bob changed the team's layers: activated tool-2\. Your views follow\./);
      if (!['Undo', 'Hold'].every((b) => toast.buttons.includes(b)))
        throw new Error(`the notification's buttons: ${toast.buttons.join(', ')}`);
      await shot('e2e-teammate.png');
    });

    await check('the Layer Editor fits the side bar; saving the team layer warns first, and the Team view shows the drift', async () => {
      await clearToasts(page);
      await openStrataView(page);
      // Picking the layer in the Layers view loads it; the palette's Edit Layer is the sure way if a
      // refresh of the tree (teammates' heartbeats) swallowed the click.
      await clickTreeRow(page, 'Layers', LAYER);
      const frame = await layerEditorFrame(page, 5000).catch(async () => {
        await runCommand(page, 'Strata: Edit Layer');
        await (
          await focusPick(page, LAYER)
        )();
        return layerEditorFrame(page);
      });
      const overflow = await frame.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 0) throw new Error(`the Layer Editor scrolls sideways by ${overflow} px at the side bar's width`);
      await frame.locator('#description').fill('edited on alice only');
      await frame.locator('#save').click();
      await answerDialog(page, /is a layer of team e2e/, 'Save Only');
      await waitFor(
        async () => (await treeRows(page, 'Team')).some((r) => r.label === `${LAYER} differs from the team file`),
        30000,
        `the Team view to show the drift (rows: ${JSON.stringify(await treeRows(page, 'Team'))})`,
      );
      await waitToast(page, /tool-2 now differs from the team file \(drift\)/);
      const st = JSON.parse(run(process.execPath, [CLI, 'team', 'status', '--json'], { env }));
      if (!st.drift?.includes(`~${LAYER}`)) throw new Error(`team status says drift: ${JSON.stringify(st.drift)}`);
      if (readJson(teamFile).layers[LAYER].digest === st.contentDrift?.[0]?.here)
        throw new Error('the team file changed without being asked');
      await shot('e2e-drift.png');
    });

    if (total.failed && page) {
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'e2e-failure.png') }).catch(() => {});
      console.log(`  (failure screenshot: test-artifacts/e2e-failure.png; code-server log:\n${tail(server?.output() ?? '', 10)})`);
      console.log(`  (the extension's "Strata" log:\n${tail(strataLog(scratch.user), 40)})`);
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
