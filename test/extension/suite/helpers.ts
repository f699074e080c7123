/**
 * Shared by the extension-host suites: the extension's API, waiting for a condition, a client of
 * the same agent the extension talks to, the real CLI, and a fixture of two layers and a view
 * that each suite creates through the agent API (so nothing depends on the harness's data).
 */
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFile, spawn } from 'child_process';
import * as vscode from 'vscode';
import { AgentClient, startDetached } from '../../../shared/client';
import { socketPath } from '../../../shared/paths';
import type { StrataApi } from '../../../extension/api';
import type { Prompt } from '../../../extension/ask';
import type { Notice } from '../../../extension/errors';
import { eventually } from '../../wait';

export const EXTENSION_ID = 'strata.strata';

export function extension(): vscode.Extension<StrataApi> {
  const ext = vscode.extensions.getExtension<StrataApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed in this host`);
  return ext;
}

export { eventually };

/**
 * The activated extension's API, once it is connected to its agent. The test workspace is in no
 * view and has no team file, so the extension starts no agent by itself: start it as a user would.
 */
export async function strata(): Promise<StrataApi> {
  const api = await extension().activate();
  if (!api.connected()) await vscode.commands.executeCommand('strata.startAgent');
  await eventually('the extension to connect to its agent', () => api.connected(), 30000);
  return api;
}

/** The newest notification the extension showed whose message matches, once there is one after `since`. */
export function notice(api: StrataApi, re: RegExp, since: number, ms = 15000): Promise<Notice> {
  return eventually(
    () => `a notification matching ${re} (seen: ${JSON.stringify(api.notices().map((n) => n.message))})`,
    () => [...api.notices()].reverse().find((n) => n.at >= since && re.test(n.message)),
    ms,
  );
}

/** Click one of a notification's buttons (runs what the click would). */
export async function click(n: Notice, title: string): Promise<void> {
  const a = n.actions.find((x) => x.title === title);
  assert.ok(a, `the notification "${n.message}" has a "${title}" button (it has: ${n.actions.map((x) => x.title).join(', ')})`);
  await a.run();
}

/**
 * Answer the extension's input boxes and quick picks in order, as a person would type or pick
 * (an answer may look at the prompt); once the answers run out, Escape. Returns the prompts seen.
 */
export function answerInputs(api: StrataApi, answers: (string | ((p: Prompt) => string | undefined))[]): Prompt[] {
  const seen: Prompt[] = [];
  const left = [...answers];
  api.answerInputs((p) => {
    seen.push(p);
    const a = left.shift();
    return typeof a === 'function' ? a(p) : a;
  });
  return seen;
}

export async function clientFor(home: string): Promise<AgentClient> {
  const c = new AgentClient(socketPath(home));
  await c.connect();
  return c;
}

export function cliPath(): string {
  return path.join(extension().extensionPath, 'dist', 'cli.js');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI against `home` (a separate process, like a user's shell). */
export function cli(home: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath(), ...args],
      { env: { ...process.env, STRATA_HOME: home, ELECTRON_RUN_AS_NODE: '1' }, timeout: 60000 },
      (e, stdout, stderr) => {
        const code = e ? (typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

export function read(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Two layers A (priority 1000) and B (priority 2000) that each map only /<id> (a path no other
 * layer touches), and a view of a fresh base folder at a fresh mountpoint. `file` is the mapped file
 * as the view serves it: "base", "A" or "B".
 */
export interface Fixture {
  id: string;
  dir: string;
  a: string;
  b: string;
  base: string;
  mnt: string;
  /** The view path the layers map. */
  original: string;
  file: string;
  cleanup(): Promise<void>;
}

export async function makeFixture(c: AgentClient, prefix: string): Promise<Fixture> {
  const id = `${prefix}-${crypto.randomBytes(3).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ext-'));
  fs.chmodSync(dir, 0o755);
  const base = path.join(dir, 'base');
  const mnt = path.join(dir, 'mnt');
  const original = `/${id}`;
  for (const [where, text] of [
    [path.join(base, id), 'base'],
    [path.join(dir, 'src-a'), 'A'],
    [path.join(dir, 'src-b'), 'B'],
  ]) {
    fs.mkdirSync(where, { recursive: true });
    fs.writeFileSync(path.join(where, 'tool.txt'), text);
  }
  fs.mkdirSync(mnt);
  const a = `${id}-a`;
  const b = `${id}-b`;
  for (const [name, src, priority] of [
    [a, 'src-a', 1000],
    [b, 'src-b', 2000],
  ] as const) {
    await c.call('layer.create', {
      name,
      from: path.join(dir, src),
      priority,
      version: '1.0.0',
      description: `extension test layer ${name}`,
    });
    await c.call('layer.unmap', { name, original: '/' });
    await c.call('layer.map', { name, original, destination: '/' });
  }
  await c.call('view.add', { base, at: mnt });
  return {
    id,
    dir,
    a,
    b,
    base,
    mnt,
    original,
    file: path.join(mnt, id, 'tool.txt'),
    cleanup: async () => {
      await c.call('deactivate', { names: [a, b], force: true }).catch(() => {});
      await c.call('view.rm', { base }).catch(() => {});
      for (const n of [a, b]) await c.call('layer.rm', { name: n }).catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A Strata relay (`strata relay --json`) on a free loopback port, with `secretFile`. */
export async function startRelay(secretFile: string): Promise<{ url: string; stop(): void }> {
  const relay = spawn(process.execPath, [cliPath(), 'relay', '--listen', '127.0.0.1:0', '--secret-file', secretFile, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  let out = '';
  relay.stdout!.on('data', (d) => (out += String(d)));
  const url = await eventually('the relay to print its address', () => /"url":\s*"([^"]+)"/.exec(out)?.[1]);
  return { url, stop: () => relay.kill('SIGTERM') };
}

/** A second agent with its own STRATA_HOME (a teammate's machine), heartbeats every 500 ms. */
export async function startSecondAgent(home: string): Promise<{ client: AgentClient; stop(): Promise<void> }> {
  const env = { ...process.env, STRATA_HOME: home, STRATA_TEAM_HEARTBEAT_MS: '500', ELECTRON_RUN_AS_NODE: '1' };
  startDetached(home, path.join(extension().extensionPath, 'dist', 'agent.js'), env);
  const client = await eventually('the second agent to answer', () => clientFor(home), 20000);
  const pid = (await client.call('status', {})).pid;
  const gone = () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  return {
    client,
    stop: async () => {
      await client.call('agent.stop', {}).catch(() => {});
      client.close();
      await eventually('the second agent to exit', gone, 15000).catch(() => {});
    },
  };
}

/**
 * Team test layers on `client`'s agent, created the same way on every agent so their digests
 * agree: each from `dir/src` (priority 3000, version 1.0.0), mapping `/id` of a view to its root.
 */
export async function createMappedLayers(
  client: AgentClient,
  dir: string,
  id: string,
  layers: [string, string][],
  description: string,
): Promise<void> {
  for (const [name, src] of layers) {
    await client.call('layer.create', { name, from: path.join(dir, src), priority: 3000, version: '1.0.0', description });
    await client.call('layer.unmap', { name, original: '/' });
    await client.call('layer.map', { name, original: `/${id}`, destination: '/' });
  }
}
