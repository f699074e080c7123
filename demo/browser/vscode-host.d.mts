// Types for vscode-host.mjs, for the TypeScript callers (bench/extension.ts, demo/main.ts). The page
// and browser types are narrowed to what those callers use: playwright-core's own types need the DOM
// library, which the project's tsconfig leaves out on purpose.
import type { ChildProcess } from 'child_process';

export const ROOT: string;
export const CODE_SERVER_VERSION: string;
export const CODE_SERVER_PKG: string;
export const SERVER_MAIN: string;
export const CODE_SERVER_ENTRY: string;
export const CHROMIUM: string;
export const CLI: string;

export interface Scratch {
  dir: string;
  user: string;
  server: string;
  exts: string;
  browser: string;
  tmp: string;
  home: string;
  logs: string;
  env: NodeJS.ProcessEnv;
}

export interface Group {
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export interface Server extends Group {
  port: number;
  origin: string;
  authority: string;
}

export interface Locator {
  first(): Locator;
  waitFor(opts?: { timeout?: number; state?: 'attached' | 'visible' | 'hidden' }): Promise<void>;
  click(): Promise<void>;
  fill(text: string): Promise<void>;
  textContent(): Promise<string | null>;
}

export interface Page {
  goto(url: string, opts?: { timeout?: number }): Promise<unknown>;
  reload(): Promise<unknown>;
  close(): Promise<void>;
  screenshot(opts: { path: string }): Promise<unknown>;
  waitForTimeout(ms: number): Promise<void>;
  keyboard: { press(key: string): Promise<void>; type(text: string): Promise<void> };
  mouse: { move(x: number, y: number): Promise<void> };
  locator(selector: string, opts?: { hasText?: string | RegExp }): Locator;
  on(event: 'console', fn: (m: { text(): string }) => void): void;
  on(event: 'pageerror', fn: (e: Error) => void): void;
}

export interface Browser {
  page: Page;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export function missingTools(): string[];
export function makeScratch(prefix: string, opts?: { dir?: string }): Scratch;
export function writeSettings(userDataDir: string, extra?: Record<string, unknown>): void;
export function waitFor<T>(pred: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs?: number): Promise<NonNullable<T>>;
export function startGroup(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; logFile?: string; ready: RegExp; timeoutMs?: number; name: string },
): Promise<Group & { match: RegExpMatchArray }>;
export function killGroup(proc: ChildProcess): Promise<void>;
export function startVscodeServer(
  scratch: Scratch,
  opts?: { env?: NodeJS.ProcessEnv; extraArgs?: string[]; timeoutMs?: number },
): Promise<Server>;
export function startCodeServer(
  scratch: Scratch,
  opts?: { env?: NodeJS.ProcessEnv; folder?: string; port?: number; extraArgs?: string[]; timeoutMs?: number },
): Promise<Server>;
export function installExtension(scratch: Scratch, vsix: string): string;
export function workbenchUrl(server: Server, folder: string, payload?: [string, string][]): string;
export function launchChromium(scratch: Scratch, opts?: { viewport?: { width: number; height: number } }): Promise<Browser>;
export function stopAgent(home: string, env?: NodeJS.ProcessEnv): void;
export function unmountUnder(dir: string): void;
export function removeScratch(dir: string): void;
export function tail(text: string, lines?: number): string;
export function withCleanup<T>(fn: (cleanups: (() => unknown)[]) => Promise<T>): Promise<T>;
