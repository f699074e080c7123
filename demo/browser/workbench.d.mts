// Types for workbench.mjs (see vscode-host.d.mts for why Page is narrowed).
import type { Page } from './vscode-host.mjs';

export function waitWorkbench(page: Page, timeoutMs?: number): Promise<void>;
export function runCommand(page: Page, title: string, timeoutMs?: number): Promise<void>;
export function focusPick(page: Page, text: string, timeoutMs?: number): Promise<() => Promise<void>>;
export function openStrataView(page: Page, timeoutMs?: number): Promise<void>;
export function strataStatusText(page: Page): Promise<string>;
export function treeRows(page: Page, paneTitle: string): Promise<{ label: string; description: string; aria: string }[]>;
export function layerRows(page: Page): Promise<{ label: string; description: string; aria: string }[]>;
export function clearToasts(page: Page): Promise<void>;
export function armSwitchTimer(page: Page, layer: string): Promise<void>;
export function readSwitchTimer(page: Page, timeoutMs?: number): Promise<{ tree: number; status: number }>;
export function readActivationTimes(
  page: Page,
  extensionId: string,
  timeoutMs?: number,
): Promise<{ loadCode: number; callActivate: number; finishActivate: number; event: string }>;
