/**
 * Small helpers for the file system benchmark: running child processes, timing commands (with
 * hyperfine when present), statistics, and one cleanup list that runs on success, failure and
 * signals alike.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';

const started = Date.now();

/** Progress on stderr, with the seconds since the bench started. */
export function log(msg: string): void {
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
}

// ---- child processes -----------------------------------------------------------------------------

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the child (SIGKILL, by its pid) after this long; default 15 minutes. */
  timeoutMs?: number;
}

/** Children still running, so a signal handler can stop exactly the processes this bench started. */
const live = new Set<ChildProcess>();

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${opts.timeoutMs ?? 900000} ms)`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 900000);
    child.once('error', (e) => {
      clearTimeout(timer);
      live.delete(child);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** Run and fail (with the child's stderr) unless it exits 0. */
export async function must(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(-2000)}`);
  return r.stdout;
}

export function killLiveChildren(): void {
  for (const c of live) {
    if (c.pid !== undefined && c.exitCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

// ---- timing --------------------------------------------------------------------------------------

export interface TimeOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  runs: number;
  warmup: number;
  /** Run (untimed) before every timed and warm-up run. */
  prepare?: string[];
}

/** Quote one word for hyperfine's -N mode (POSIX shell-words splitting, no shell involved). */
function word(s: string): string {
  return /^[A-Za-z0-9_.,:=%@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export class Timer {
  /** hyperfine spawns each run from a small native process, with no shell and little overhead. */
  constructor(
    readonly hyperfine: boolean,
    private readonly scratch: string,
  ) {}

  private seq = 0;

  /** Wall-clock milliseconds of each timed run (warm-up runs not included). */
  async time(argv: string[], o: TimeOptions): Promise<number[]> {
    return this.hyperfine ? this.withHyperfine(argv, o) : this.withNode(argv, o);
  }

  private async withHyperfine(argv: string[], o: TimeOptions): Promise<number[]> {
    const out = path.join(this.scratch, `hf-${process.pid}-${this.seq++}.json`);
    const args = ['-N', '--style', 'none', '--runs', String(o.runs), '--warmup', String(o.warmup), '--export-json', out];
    if (o.prepare) args.push('--prepare', o.prepare.map(word).join(' '));
    args.push(argv.map(word).join(' '));
    await must('hyperfine', args, { cwd: o.cwd, env: o.env });
    const json = JSON.parse(fs.readFileSync(out, 'utf8')) as { results: { times: number[]; exit_codes: number[] }[] };
    fs.rmSync(out, { force: true });
    const r = json.results[0];
    if (r.exit_codes.some((c) => c !== 0)) throw new Error(`${argv.join(' ')} exited ${r.exit_codes.join(',')}`);
    return r.times.map((s) => s * 1000);
  }

  private async withNode(argv: string[], o: TimeOptions): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < o.warmup + o.runs; i++) {
      if (o.prepare) await must(o.prepare[0], o.prepare.slice(1), { cwd: o.cwd, env: o.env });
      const t0 = process.hrtime.bigint();
      const r = await new Promise<number>((resolve, reject) => {
        const child = spawn(argv[0], argv.slice(1), { cwd: o.cwd, env: o.env ?? process.env, stdio: 'ignore' });
        live.add(child);
        child.once('error', reject);
        child.once('exit', (code) => {
          live.delete(child);
          resolve(code ?? 1);
        });
      });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r !== 0) throw new Error(`${argv.join(' ')} exited ${r}`);
      if (i >= o.warmup) times.push(ms);
    }
    return times;
  }
}

// ---- statistics ----------------------------------------------------------------------------------

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(s.length, rank) - 1];
}

export function round(x: number | null, digits = 3): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---- cleanup -------------------------------------------------------------------------------------

type Step = { name: string; fn: () => void };
const steps: Step[] = [];
let cleaned = false;

/** Register a synchronous clean-up step; steps run last-registered first, exactly once. */
export function onCleanup(name: string, fn: () => void): void {
  steps.push({ name, fn });
}

export function cleanupAll(): void {
  if (cleaned) return;
  cleaned = true;
  killLiveChildren();
  for (const s of steps.reverse()) {
    const t0 = Date.now();
    try {
      s.fn();
      process.stderr.write(`[bench] clean-up: ${s.name} (${Date.now() - t0} ms)\n`);
    } catch (e) {
      process.stderr.write(`[bench] clean-up "${s.name}" failed: ${(e as Error).message}\n`);
    }
  }
}

/** Mountpoints at or below `dir` in this mount namespace. */
export function mountsUnder(dir: string): string[] {
  const unesc = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => unesc(l.split(' ')[4]))
    .filter((m) => m === dir || m.startsWith(dir + '/'));
}

/** Lazily detach a mount (umount -l as root, else fusermount3/fusermount -uz); ignores "not mounted". */
export function detachSync(mountpoint: string): void {
  if (!mountsUnder(mountpoint).includes(mountpoint)) return;
  if (isRoot()) spawnSync('umount', ['-l', mountpoint], { stdio: 'ignore', timeout: 30000 });
  else {
    const r = spawnSync('fusermount3', ['-uz', mountpoint], { stdio: 'ignore', timeout: 30000 });
    if (r.status !== 0) spawnSync('fusermount', ['-uz', mountpoint], { stdio: 'ignore', timeout: 30000 });
  }
}
