/* global document -- functions passed to page.evaluate() run in the browser page */
// What the e2e test reads off the workbench to see VS Code follow a switch: the Explorer's rows, the
// text of the open editor, notification toasts and their buttons, modal dialogs, a view's tree rows,
// and the Layer Editor's page (a webview, in frames of its own). Selectors are the workbench's own
// class names, as in demo/browser/workbench.mjs. Also a team for the test: a relay and a second agent.
import { spawn } from 'child_process';
import { mkdirSync, readFileSync } from 'fs';
import { createRequire } from 'module';
import { join } from 'path';
import { CLI, ROOT, waitFor } from '../../demo/browser/vscode-host.mjs';

/** The Explorer's rows as rendered: [{label, expanded, level}]. */
export async function explorerRows(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.explorer-folders-view .monaco-list-row')].map((r) => ({
      label: (r.querySelector('.label-name')?.textContent || '').trim(),
      expanded: r.getAttribute('aria-expanded'),
      level: Number(r.getAttribute('aria-level') || 0),
    })),
  );
}

/** Expand the Explorer's folder `label` (a click on a collapsed row). */
export async function expandExplorerFolder(page, label, timeoutMs = 15000) {
  const row = page.locator('.explorer-folders-view .monaco-list-row', { has: page.locator('.label-name', { hasText: label }) }).first();
  await row.waitFor({ timeout: timeoutMs });
  if ((await row.getAttribute('aria-expanded')) !== 'true') await row.click();
  await waitFor(async () => (await row.getAttribute('aria-expanded')) === 'true', timeoutMs, `the Explorer to expand ${label}`);
}

/** The text of the visible editor's lines (the one editor the test keeps open); the editor renders spaces as U+00A0. */
export async function editorText(page) {
  const text = await page.evaluate(() =>
    [...document.querySelectorAll('.editor-group-container .monaco-editor .view-lines')].map((e) => e.textContent || '').join('\n'),
  );
  return text.replace(/\u00a0/g, ' ');
}

/** The toasts on screen: [{text, buttons}]. */
export async function toasts(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.notifications-toasts .notification-toast')].map((t) => ({
      text: (t.querySelector('.notification-list-item-message')?.textContent || t.textContent || '').trim(),
      buttons: [...t.querySelectorAll('.notification-list-item-buttons-container .monaco-button')].map((b) => (b.textContent || '').trim()),
    })),
  );
}

/** Waits for a toast whose text matches `re`; returns it. */
export async function waitToast(page, re, timeoutMs = 30000) {
  return waitFor(async () => (await toasts(page)).find((t) => re.test(t.text)), timeoutMs, `a notification matching ${re}`);
}

/** Waits for a modal dialog whose message matches `re`, and clicks its button `title`. */
export async function answerDialog(page, re, title, timeoutMs = 20000) {
  const box = page.locator('.monaco-dialog-box', { hasText: re }).first();
  await box.waitFor({ timeout: timeoutMs });
  await box.locator('.dialog-buttons .monaco-button', { hasText: title }).first().click();
  await box.waitFor({ state: 'hidden', timeout: timeoutMs });
}

/** Clicks the row `label` of the tree in the pane titled `pane`. */
export async function clickTreeRow(page, pane, label, timeoutMs = 15000) {
  const p = page.locator('.pane', { has: page.locator('.pane-header', { hasText: pane }) }).first();
  const row = p.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: label }) }).first();
  await row.waitFor({ timeout: timeoutMs });
  await row.click();
}

/** The Layer Editor's page: the frame that holds its #app (webviews nest two frames deep). */
export async function layerEditorFrame(page, timeoutMs = 30000) {
  return waitFor(
    async () => {
      for (const f of page.frames()) {
        try {
          if (await f.$('#app form')) return f;
        } catch {
          /* a frame going away */
        }
      }
      return null;
    },
    timeoutMs,
    'the Layer Editor to show a layer',
  );
}

/** The layer digest, from the agent's own code (bundled on the fly: this test is plain JavaScript). */
export async function digestOf(layerDir, scratchDir) {
  const esbuild = createRequire(join(ROOT, 'package.json'))('esbuild');
  const out = join(scratchDir, 'digest.cjs');
  mkdirSync(scratchDir, { recursive: true });
  esbuild.buildSync({
    entryPoints: [join(ROOT, 'daemon/team/digest.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile: out,
    logLevel: 'warning',
  });
  return createRequire(out)(out).digestLayerDir(layerDir);
}

/** A standalone relay on a free loopback port: {url, stop}. */
export async function startRelay(secretFile, env) {
  const proc = spawn(process.execPath, [CLI, 'relay', '--listen', '127.0.0.1:0', '--secret-file', secretFile, '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => (out += String(d)));
  proc.stderr.on('data', (d) => (out += String(d)));
  const url = await waitFor(() => /"url":\s*"([^"]+)"/.exec(out)?.[1], 20000, `the relay to print its address (${out})`);
  return { url, stop: () => proc.kill('SIGTERM') };
}

export function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}
