/** A client of the agent's control socket, used by the CLI (and by the extension). */
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn } from 'child_process';
import { ErrorInfo, Method, Params, ProgressEvent, Result, StateEvent, checkIncoming, checkResult } from '../protocol';
import { StrataError } from './errors';
import { checkRuntimeDir, checkSocketOwner } from './paths';

export class AgentClient {
  private socket: net.Socket | null = null;
  private nextId = 1;
  private pending = new Map<number, { method: Method; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private buf = '';
  onEvent: (e: StateEvent | ProgressEvent) => void = () => {};
  onClose: () => void = () => {};

  constructor(readonly socketPath: string) {}

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.connect(this.socketPath);
      s.setEncoding('utf8');
      s.once('connect', () => {
        this.socket = s;
        resolve();
      });
      s.once('error', (e) => {
        if (!this.socket) reject(e);
      });
      s.on('data', (chunk: string) => this.onData(chunk));
      s.on('close', () => {
        this.socket = null;
        for (const p of this.pending.values()) {
          p.reject(
            new StrataError('E_AGENT_UNAVAILABLE', 'the agent closed the connection', 'Run "strata agent start", or see the agent log.'),
          );
        }
        this.pending.clear();
        this.onClose();
      });
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const m = checkIncoming(line);
      if (!m.ok) continue;
      const msg = m.value;
      if ('event' in msg) {
        this.onEvent(msg);
        continue;
      }
      const p = this.pending.get(msg.id);
      if (!p) continue;
      this.pending.delete(msg.id);
      if (!msg.ok) {
        p.reject(fromInfo(msg.error));
        continue;
      }
      const r = checkResult(p.method, msg.result);
      if (r.ok) p.resolve(r.value);
      else
        p.reject(
          new StrataError(
            r.error.code,
            r.error.message,
            'The agent may run another version of Strata: restart it with "strata agent stop".',
          ),
        );
    }
  }

  call<M extends Method>(method: M, params: Params<M>): Promise<Result<M>> {
    const s = this.socket;
    if (!s) return Promise.reject(new StrataError('E_AGENT_UNAVAILABLE', 'not connected to the agent', 'Run "strata agent start".'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject });
      s.write(JSON.stringify({ id, method, params }) + '\n');
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}

export function fromInfo(info: ErrorInfo): StrataError {
  return new StrataError(info.code, info.message, info.hint);
}

/**
 * Connect only to an agent of ours: the runtime folder is checked before connecting (so a fake
 * agent sees nothing) and again after, with the socket's owner, in case it appeared in between.
 * Null when nothing serves the socket; throws when the folder or socket is not safe.
 */
async function tryConnect(sock: string): Promise<AgentClient | null> {
  const dir = path.dirname(sock);
  if (!checkRuntimeDir(dir)) return null;
  const c = new AgentClient(sock);
  try {
    await c.connect();
  } catch {
    return null;
  }
  try {
    if (!checkRuntimeDir(dir)) throw new StrataError('E_AGENT_UNAVAILABLE', `${dir} vanished while connecting to the agent`);
    checkSocketOwner(sock);
  } catch (e) {
    c.close();
    throw e;
  }
  return c;
}

/** Nothing serves the socket (as opposed to a socket or folder refused as unsafe). */
export class NoAgent extends StrataError {
  constructor(socket: string) {
    super('E_AGENT_UNAVAILABLE', `no agent is serving ${socket}`, 'Start one with "strata agent start".');
  }
}

/**
 * Connect to the agent for this home, starting it in the background when it is not running.
 * The agent outlives the caller (detached, its own session), and logs to $STRATA_HOME/agent.log.
 */
export async function connectOrStart(opts: {
  home: string;
  socket: string;
  agentScript: string;
  start: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}): Promise<AgentClient> {
  const existing = await tryConnect(opts.socket);
  if (existing) return existing;
  if (!opts.start) throw new NoAgent(opts.socket);
  const child = startDetached(opts.home, opts.agentScript, opts.env);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  while (Date.now() < deadline) {
    const c = await tryConnect(opts.socket);
    if (c) return c;
    if (exited !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tail = readTail(logFile(opts.home));
  throw new StrataError(
    'E_AGENT_UNAVAILABLE',
    exited !== null
      ? `the agent exited during start-up (code ${exited})${tail ? `:\n${tail}` : ''}`
      : `the agent did not answer on ${opts.socket} in time`,
    `See ${logFile(opts.home)}.`,
  );
}

export function logFile(home: string): string {
  return path.join(home, 'agent.log');
}

export function startDetached(home: string, agentScript: string, env: NodeJS.ProcessEnv = process.env) {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  // The log names layers, paths and peers: private, like everything in STRATA_HOME.
  const out = fs.openSync(logFile(home), 'a', 0o600);
  fs.fchmodSync(out, 0o600);
  const child = spawn(process.execPath, [agentScript], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...env, STRATA_HOME: home },
  });
  fs.closeSync(out);
  child.unref();
  return child;
}

function readTail(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return lines.slice(-5).join('\n');
  } catch {
    return '';
  }
}
