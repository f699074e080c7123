/** Shared set-up for integration tests: a private STRATA_HOME, a base folder, the real CLI. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFile, spawnSync } from 'child_process';
import { readAgentRecord, socketPath } from '../../shared/paths';
import { AgentClient } from '../../shared/client';
import type { StateEvent } from '../../protocol';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Env {
  dir: string;
  home: string;
  base: string;
  mnt: string;
  env: NodeJS.ProcessEnv;
  cli(...args: string[]): Promise<CliResult>;
  /** Run the CLI and fail the test (with its stderr) unless it succeeds. */
  ok(...args: string[]): Promise<string>;
  json<T = unknown>(...args: string[]): Promise<T>;
  cleanup(): Promise<void>;
}

export function makeEnv(prefix = 'strata-it-'): Env {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  const home = path.join(dir, 'home');
  const base = path.join(dir, 'base');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(base);
  const env = {
    ...process.env,
    STRATA_HOME: home,
    STRATA_CACHE_TIMEOUT: process.env.STRATA_CACHE_TIMEOUT ?? '60',
    STRATA_TEAM_HEARTBEAT_MS: '500',
  };
  const cli = (...args: string[]): Promise<CliResult> =>
    new Promise((res) => {
      execFile(process.execPath, [CLI, ...args], { env, timeout: 60000 }, (e, stdout, stderr) => {
        const code = e
          ? typeof (e as NodeJS.ErrnoException & { code?: unknown }).code === 'number'
            ? (e as unknown as { code: number }).code
            : 1
          : 0;
        res({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    });
  const ok = async (...args: string[]): Promise<string> => {
    const r = await cli(...args);
    if (r.code !== 0) throw new Error(`strata ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  return {
    dir,
    home,
    base,
    mnt,
    env,
    cli,
    ok,
    json: async <T>(...args: string[]) => JSON.parse(await ok(...args, '--json')) as T,
    cleanup: async () => {
      const agent = readAgentRecord(home)?.pid;
      await cli('agent', 'stop');
      // Belt and braces: no agent or view server of this test may outlive it (a test may leave
      // views serving on purpose, --keep-views), and nothing of ours may stay mounted.
      for (let i = 0; agent && alive(agent) && i < 50; i++) await new Promise((r) => setTimeout(r, 100));
      if (agent && alive(agent)) process.kill(agent, 'SIGKILL');
      for (const pid of viewServers((argv) => argv.some((a) => a.startsWith(dir + '/')))) process.kill(pid, 'SIGKILL');
      for (const m of [mnt, base]) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
      if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Write a tree: {'bin/tool': 'text'} (a trailing '/' makes a directory). */
export function writeTree(root: string, files: Record<string, string>, mode = 0o755): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    if (rel.endsWith('/')) {
      fs.mkdirSync(p, { recursive: true });
      continue;
    }
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content, { mode });
  }
}

export function sh(cmd: string, opts: { cwd?: string } = {}): Promise<CliResult> {
  return new Promise((res) => {
    execFile('sh', ['-c', cmd], { cwd: opts.cwd, timeout: 60000 }, (e, stdout, stderr) => {
      res({ code: e ? ((e as unknown as { code: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function mounted(p: string): boolean {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === p);
}

/** Whether `pid` runs (a zombie does not). */
export function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The live strata-viewd processes whose arguments `match` accepts. */
export function viewServers(match: (argv: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0].endsWith('strata-viewd') && match(argv) && alive(Number(d))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** A client of e's agent, subscribed: every state event it sends is pushed onto `events`. */
export async function stateEvents(e: Env, events: StateEvent[]): Promise<AgentClient> {
  const c = new AgentClient(socketPath(e.home, e.env));
  await c.connect();
  c.onEvent = (x) => {
    if (x.event === 'state') events.push(x);
  };
  await c.call('subscribe', {});
  return c;
}
