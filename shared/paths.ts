import * as crypto from 'crypto';
import * as os from 'os';
import * as fs from 'fs';
import * as path from 'path';
import { StrataError } from './errors';

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

/**
 * Refuse a runtime folder another user made or can write to: whoever controls it can serve a fake
 * agent on its socket and read every request. It must be a real folder (no symlink), ours, mode
 * 0700. False when it does not exist.
 */
export function checkRuntimeDir(dir: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  const remove = `Remove it (only its owner or root can: rm -r ${dir}), or set XDG_RUNTIME_DIR to a folder only you can use.`;
  if (!st.isDirectory()) {
    throw unsafe(`the agent's runtime folder ${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}`, remove);
  }
  if (st.uid !== uid) {
    throw unsafe(
      `the agent's runtime folder ${dir} belongs to uid ${st.uid}, not to you (uid ${uid}): someone else may pose as the agent`,
      remove,
    );
  }
  const mode = st.mode & 0o777;
  if (mode !== 0o700) {
    throw unsafe(
      `the agent's runtime folder ${dir} has mode ${mode.toString(8).padStart(4, '0')}, not 0700: other users could replace the agent's socket`,
      `Run "chmod 700 ${dir}" and start the agent again.`,
    );
  }
  return true;
}

/**
 * The socket itself must be ours too. Node cannot read the peer's credentials (SO_PEERCRED), so the
 * owner of the socket file stands in for them: in a folder that passed checkRuntimeDir only we (or
 * root) can have made it.
 */
export function checkSocketOwner(sock: string): void {
  const st = fs.lstatSync(sock);
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const remove = `Stop whatever serves it and remove it (rm ${sock}).`;
  if (!st.isSocket()) throw unsafe(`${sock} is not a socket`, remove);
  if (st.uid !== uid) throw unsafe(`the agent's socket ${sock} belongs to uid ${st.uid}, not to you (uid ${uid})`, remove);
}

function unsafe(what: string, hint: string): StrataError {
  return new StrataError('E_AGENT_UNAVAILABLE', `${what}; refusing to use it`, hint);
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
