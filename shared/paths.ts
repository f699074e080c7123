import * as crypto from 'crypto';
import * as os from 'os';
import * as fs from 'fs';
import * as path from 'path';

/** $STRATA_HOME, else the XDG data directory's strata/ (~/.local/share/strata). */
export function strataHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATA_HOME) return path.resolve(env.STRATA_HOME);
  const data = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'strata');
}

/**
 * The per-user, per-home runtime directory (0700) for the socket and pid file. Kept short: a Unix
 * socket path must fit in 108 bytes, and STRATA_HOME may be deep.
 */
export function runtimeDir(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_RUNTIME_DIR || os.tmpdir();
  const uid = process.getuid ? process.getuid() : 0;
  const id = crypto.createHash('sha256').update(home).digest('hex').slice(0, 12);
  return path.join(base, `strata-${uid}-${id}`);
}

export function socketPath(home: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(runtimeDir(home, env), 'agent.sock');
}

/** True when `child` is `parent` or lies below it (both absolute). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Where a running agent records its pid and socket, so every client finds the same agent. */
export function agentRecord(home: string): string {
  return path.join(home, 'agent.json');
}

/**
 * The socket of the agent serving `home`: the one its record names while that process lives
 * (clients may differ in TMPDIR or XDG_RUNTIME_DIR), else the default for this environment.
 */
export function findSocket(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const rec = readAgentRecord(home);
  return rec && pidAlive(rec.pid) ? rec.socket : socketPath(home, env);
}

export function readAgentRecord(home: string): { pid: number; socket: string } | null {
  try {
    const r = JSON.parse(fs.readFileSync(agentRecord(home), 'utf8'));
    return typeof r.pid === 'number' && typeof r.socket === 'string' ? r : null;
  } catch {
    return null;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent');
  } catch {
    return false;
  }
}
