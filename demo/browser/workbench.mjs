// Drives the VS Code workbench in a playwright page the way a person does: the command palette,
// quick picks, the Strata view container, the status bar. Selectors are the workbench's own
// stable class names (the smoke tests of VS Code use the same ones).

const QUICK_INPUT = '.quick-input-widget';

export async function waitWorkbench(page, timeoutMs = 60000) {
  await page.waitForSelector('.monaco-workbench', { timeout: timeoutMs });
  await page.waitForSelector('.part.statusbar', { timeout: timeoutMs });
}

/** F1, type the command's palette title, wait until it is the focused row, Enter. */
export async function runCommand(page, title, timeoutMs = 20000) {
  await page.keyboard.press('F1');
  const input = page.locator(`${QUICK_INPUT} input`);
  await input.waitFor({ state: 'visible', timeout: timeoutMs });
  await input.fill(`>${title}`);
  await page.locator(`${QUICK_INPUT} .monaco-list-row.focused`, { hasText: title }).first().waitFor({ timeout: timeoutMs });
  await page.keyboard.press('Enter');
}

/**
 * In an open quick pick: wait for the row that holds text, move the focus to it by typing a filter,
 * and return a function that presses Enter (so a caller can time from that key press).
 */
export async function focusPick(page, text, timeoutMs = 20000) {
  const row = page.locator(`${QUICK_INPUT} .monaco-list-row`, { hasText: text }).first();
  await row.waitFor({ timeout: timeoutMs });
  await page.locator(`${QUICK_INPUT} input`).fill(text);
  await page.locator(`${QUICK_INPUT} .monaco-list-row.focused`, { hasText: text }).first().waitFor({ timeout: timeoutMs });
  return () => page.keyboard.press('Enter');
}

/**
 * Shows the Strata view container (which also activates the extension) with "Strata: Focus on Layers
 * View" from the palette. Not by clicking the activity bar: a click on a container that is being
 * restored as the open one closes the side bar instead.
 */
export async function openStrataView(page, timeoutMs = 60000) {
  const header = page.locator('.pane-header', { hasText: 'Layers' }).first();
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await header.waitFor({ timeout: 3000 });
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
    }
    await page.keyboard.press('Escape');
    // A palette opened before the extension's views were registered never lists the command while
    // it stays open: give each attempt a few seconds, then close it and ask again.
    await runCommand(page, 'Strata: Focus on Layers View', 4000).catch((e) => {
      if (Date.now() > end) throw e;
    });
  }
}

/** The text of Strata's status bar item ('' while it is not shown). */
export async function strataStatusText(page) {
  return page.evaluate(() => {
    for (const el of document.querySelectorAll('.part.statusbar .statusbar-item')) {
      const id = el.id || '';
      if (id.includes('strata.status') || (el.getAttribute('aria-label') || '').includes('Strata')) return (el.textContent || '').trim();
    }
    return '';
  });
}

/** Rows of a view's tree as rendered: [{label, description, aria}]; the view found by its pane title. */
export async function treeRows(page, paneTitle) {
  return page.evaluate((title) => {
    const re = new RegExp(`\\b${title}\\b`, 'i');
    const header = [...document.querySelectorAll('.pane-header')].find((h) => re.test(h.textContent || ''));
    const pane = header?.closest('.pane');
    if (!pane) return [];
    return [...pane.querySelectorAll('.monaco-list-row')].map((r) => ({
      label: (r.querySelector('.label-name')?.textContent || '').trim(),
      description: (r.querySelector('.label-description')?.textContent || '').trim(),
      aria: r.getAttribute('aria-label') || '',
    }));
  }, paneTitle);
}

/** Rows of the Layers tree. */
export function layerRows(page) {
  return treeRows(page, 'Layers');
}

/** Closes notification toasts, so a screenshot shows the workbench rather than a toast mid-animation. */
export async function clearToasts(page) {
  await page.keyboard.press('Escape').catch(() => {});
  await page.waitForTimeout(400);
}

/**
 * Arms a page-side timer for one switch: t0 is the Enter keydown (seen first, in the capture phase),
 * then a MutationObserver notes when the Layers tree row of `layer` reads "active" and when the status
 * bar item names it. Page clocks only, so no round trip to the test process is counted.
 */
export async function armSwitchTimer(page, layer) {
  await page.evaluate((name) => {
    const t = { t0: null, tree: null, status: null };
    window.__strataSwitch = t;
    const treeActive = () => {
      const header = [...document.querySelectorAll('.pane-header')].find((h) => /\bLayers\b/.test(h.textContent || ''));
      const pane = header?.closest('.pane');
      for (const r of pane ? pane.querySelectorAll('.monaco-list-row') : []) {
        if ((r.querySelector('.label-name')?.textContent || '').trim() !== name) continue;
        const d = (r.querySelector('.label-description')?.textContent || '').trim();
        return /(^|\W)active$/.test(d) && !/inactive/.test(d);
      }
      return false;
    };
    const statusNames = () =>
      [...document.querySelectorAll('.part.statusbar .statusbar-item')].some(
        (el) => (el.id || '').includes('strata.status') && (el.textContent || '').includes(name),
      );
    const onKey = (e) => {
      if (e.key === 'Enter' && t.t0 === null) t.t0 = performance.now();
    };
    window.addEventListener('keydown', onKey, true);
    const obs = new MutationObserver(() => {
      if (t.t0 === null) return;
      const now = performance.now();
      if (t.tree === null && treeActive()) t.tree = now;
      if (t.status === null && statusNames()) t.status = now;
      if (t.tree !== null && t.status !== null) {
        obs.disconnect();
        window.removeEventListener('keydown', onKey, true);
      }
    });
    obs.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  }, layer);
}

/** {tree, status}: ms from the Enter key to the tree and to the status bar showing the switch. */
export async function readSwitchTimer(page, timeoutMs = 30000) {
  const handle = await page.waitForFunction(
    () => {
      const t = window.__strataSwitch;
      return t && t.t0 !== null && t.tree !== null && t.status !== null ? { tree: t.tree - t.t0, status: t.status - t.t0 } : null;
    },
    undefined,
    { timeout: timeoutMs, polling: 50 },
  );
  return handle.jsonValue();
}

/**
 * The extension host's own activation figures for an extension, from "Developer: Startup
 * Performance" (its "Extension Activation Stats" table): {loadCode, callActivate, finishActivate, event}.
 */
export async function readActivationTimes(page, extensionId, timeoutMs = 20000) {
  await runCommand(page, 'Developer: Startup Performance');
  const editor = page.locator('.monaco-editor').first();
  await editor.waitFor({ timeout: timeoutMs });
  await page.locator('.monaco-editor .view-line', { hasText: 'Performance Marks' }).first().waitFor({ timeout: timeoutMs });
  // The table is far down the report and the editor renders only the lines in view: find the row.
  await editor.click();
  await page.keyboard.press('Control+F');
  await page.keyboard.type(`| ${extensionId} `);
  await page.keyboard.press('Enter');
  const row = page.locator('.monaco-editor .view-line', { hasText: extensionId }).first();
  await row.waitFor({ timeout: timeoutMs });
  await page.keyboard.press('Escape');
  const text = (await row.textContent()).replace(/\u00a0/g, ' ');
  const cells = text
    .split('|')
    .map((c) => c.trim())
    .filter((c, i, a) => i > 0 && i < a.length - 1);
  // Extension | Eager | Load Code | Call Activate | Finish Activate | Event | By
  const [id, , load, call, finish, event] = cells;
  if (id !== extensionId || [load, call, finish].some((n) => !/^\d+$/.test(n))) throw new Error(`unexpected activation stats row: ${text}`);
  await page.keyboard.press('Control+W');
  return { loadCode: Number(load), callActivate: Number(call), finishActivate: Number(finish), event };
}
