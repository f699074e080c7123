/**
 * What a killed agent leaves in the store: staging folders of a layer create or import
 * (`.create-*`, `.import-*`) and the children that were filling them (cp, tar), which outlive it.
 * Run at start, once this agent owns the home, before any command can stage anything.
 */
import * as fsp from 'fs/promises';
import * as path from 'path';

const STAGING = /^\.(create|import)-/;

/** Processes whose command line names a path at or under one of `dirs` (from /proc). */
async function holders(dirs: string[]): Promise<number[]> {
  const pids = (await fsp.readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  const found: number[] = [];
  for (const pid of pids) {
    const cmd = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const args = cmd.split('\0');
    if (args.some((a) => dirs.some((d) => a === d || a.startsWith(d + '/')))) found.push(Number(pid));
  }
  return found;
}

/** Stop the children a killed agent left filling `root`'s staging folders, then remove those folders. */
export async function sweepStaging(root: string, log: (msg: string) => void): Promise<void> {
  const names = (await fsp.readdir(root).catch(() => [] as string[])).filter((n) => STAGING.test(n));
  if (!names.length) return;
  const dirs = names.map((n) => path.join(root, n));
  for (const pid of await holders(dirs)) {
    try {
      process.kill(pid, 'SIGKILL');
      log(`[agent] stopped pid ${pid}, left filling a staging folder by an agent that was killed`);
    } catch {
      // gone already
    }
  }
  await Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true }).catch(() => {})));
  log(`[agent] removed ${names.length} staging folder(s) left by an agent that was killed: ${names.join(', ')}`);
}
