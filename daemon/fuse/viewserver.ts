/**
 * One strata-viewd process as the agent drives it (docs/view-core.md): its binary, its control
 * socket in the agent's runtime folder, the checks that the server found there is ours, and
 * starting one detached, in a session of its own, so the view outlives the agent.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { spawn } from 'child_process';
import { StrataError } from '../../shared/errors';
import { ViewdControl, ViewdError, ViewdHello } from './viewdctl';

const BINARY = 'strata-viewd';
/** A control request the server does not answer within this is a failure (the view may be stuck). */
export const CONTROL_TIMEOUT_MS = Number(process.env.STRATA_VIEWD_TIMEOUT_MS) || 30000;
const READY_TIMEOUT_MS = 15000;

let binary: string | undefined;

/** The strata-viewd executable: $STRATA_VIEWD, else build/Release/ above this file (dist/, dist/test/x/, sources). */
export function viewdBinary(): string {
  if (binary) return binary;
  const tried: string[] = [];
  const list = process.env.STRATA_VIEWD ? [process.env.STRATA_VIEWD] : [];
  for (let up = 1; up <= 4; up++) list.push(path.join(__dirname, ...Array<string>(up).fill('..'), 'build', 'Release', BINARY));
  for (const f of list) {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return (binary = f);
    } catch (e) {
      // A package that lost the executable bit (some zip tools drop it): restore it when we may.
      if ((e as NodeJS.ErrnoException).code === 'EACCES' && fs.statSync(f).isFile()) {
        try {
          fs.chmodSync(f, 0o755);
          return (binary = f);
        } catch {
          /* not ours to change */
        }
      }
      tried.push(`${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  throw new StrataError(
    'E_NATIVE_MISSING',
    `the view server (${BINARY}) is not available; tried ${tried.join('; ')}`,
    'Install libfuse3-dev, pkg-config and a C compiler, then run "npm ci" to build it (or set STRATA_VIEWD).',
  );
}

/**
 * The folder of the view servers' sockets, inside the agent's runtime folder: made 0700 when
 * missing, and refused when it is not a real folder of ours with that mode (whoever controls it
 * could pose as a view server and be sent every rule table).
 */
export function viewsDir(runtime: string): string {
  const dir = path.join(runtime, 'views');
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  checkPrivateDir(dir);
  return dir;
}

export function checkPrivateDir(dir: string): void {
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.();
  const why = !st.isDirectory()
    ? 'is not a folder'
    : st.uid !== uid
      ? `belongs to uid ${st.uid}, not to uid ${uid}`
      : (st.mode & 0o777) !== 0o700
        ? `has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, not 0700`
        : null;
  if (why) {
    throw new StrataError(
      'E_MOUNT_FAILED',
      `the view servers' folder ${dir} ${why}; refusing to use it`,
      `Remove it (rm -r ${dir}) and start the agent again.`,
    );
  }
}

/** The control socket of the server of `mountpoint`: short, whatever the mountpoint's length. */
export function socketFor(dir: string, mountpoint: string): string {
  return path.join(dir, crypto.createHash('sha256').update(mountpoint).digest('hex').slice(0, 12) + '.sock');
}

/** The uid a process runs as, or null when it is gone. */
function processUid(pid: number): number | null {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Is `pid` still a running strata-viewd (not a zombie, not a reused pid)? */
export function serverAlive(pid: number): boolean {
  try {
    if (/^\S+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
    return path.basename(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]) === BINARY;
  } catch {
    return false;
  }
}

export interface Attached {
  ctl: ViewdControl;
  hello: ViewdHello;
}

/**
 * Connect to the server on `sock` if it is ours and serves `mountpoint`. Node cannot read the
 * peer's credentials (SO_PEERCRED), so ours means: a socket we own in a 0700 folder we own, and a
 * server process running as us. Null when nothing answers there; throws when something that is
 * not ours does.
 */
export async function attach(sock: string, mountpoint: string): Promise<Attached | null> {
  const uid = process.getuid?.();
  let st: fs.Stats;
  try {
    checkPrivateDir(path.dirname(sock));
    st = fs.lstatSync(sock);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (!st.isSocket() || st.uid !== uid) {
    throw new StrataError('E_MOUNT_FAILED', `${sock} is not a socket of uid ${uid}; refusing to use it`, `Remove it (rm ${sock}).`);
  }
  let ctl: ViewdControl;
  try {
    ctl = await ViewdControl.connect(sock);
  } catch {
    fs.rmSync(sock, { force: true }); // its server is gone
    return null;
  }
  let hello: ViewdHello;
  try {
    hello = await ctl.hello(CONTROL_TIMEOUT_MS);
  } catch (e) {
    ctl.close();
    // A server that is exiting takes the connection, then drops it: it is gone.
    if (!(e instanceof ViewdError) || e.code === 'E_CLOSED') {
      fs.rmSync(sock, { force: true });
      return null;
    }
    throw new StrataError('E_MOUNT_FAILED', `the view server on ${sock}: ${e.message}`, `Stop it and remove ${sock}.`);
  }
  try {
    if (processUid(hello.pid) !== uid) throw new Error(`its server (pid ${hello.pid}) does not run as uid ${uid}`);
    if (hello.mountpoint !== mountpoint) throw new Error(`its server serves ${hello.mountpoint}, not ${mountpoint}`);
    return { ctl, hello };
  } catch (e) {
    ctl.close();
    throw new StrataError('E_MOUNT_FAILED', `the view server on ${sock}: ${(e as Error).message}`, `Stop it and remove ${sock}.`);
  }
}

/**
 * Servers of ours for `mountpoint` found by their command line (`--fsname FSNAME ... MOUNTPOINT
 * BASE SOCKET`): their sockets, which may lie in another runtime folder (an agent started with
 * another TMPDIR or XDG_RUNTIME_DIR).
 */
export function socketsByCommandLine(fsname: string, mountpoint: string): string[] {
  const uid = process.getuid?.();
  const out: string[] = [];
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
      if (path.basename(argv[0] ?? '') !== BINARY || processUid(Number(pid)) !== uid) continue;
      const i = argv.indexOf('--fsname');
      if (i < 0 || argv[i + 1] !== fsname || argv[argv.length - 3] !== mountpoint) continue;
      out.push(argv[argv.length - 1]);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export interface ServerSpec {
  mountpoint: string;
  base: string;
  inPlace: boolean;
  /** The mount's source in mountinfo: how a mount of this agent's home is recognised. */
  fsname: string;
  sock: string;
  /** Kernel entry and attribute timeouts (seconds). */
  timeout: number;
  /** The server logs here (the agent's log, appended). */
  logFile: string;
}

/**
 * Start a server, detached, and wait until it has mounted ("ready PID" on its stdout). Its log
 * goes to the agent's log; a server that fails to start is reported with the lines it wrote.
 */
export async function startServer(s: ServerSpec): Promise<Attached> {
  const bin = viewdBinary();
  const args = ['--fsname', s.fsname, '--timeout', String(s.timeout)];
  if (s.inPlace) args.unshift('--in-place');
  // allow_other only as root, where the server checks each caller's permissions as that caller.
  if (process.getuid?.() === 0) args.unshift('--allow-other');
  // Passthrough (a root server on kernel 6.9+, view-core.md) can be turned off for new views.
  if (process.env.STRATA_PASSTHROUGH === '0') args.unshift('--no-passthrough');
  args.push(s.mountpoint, s.base, s.sock);
  const log = fs.openSync(s.logFile, 'a', 0o600);
  const logStart = fs.fstatSync(log).size;
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', log] });
  fs.closeSync(log);
  const failed = (why: string): StrataError => {
    let said = '';
    try {
      const fd = fs.openSync(s.logFile, 'r');
      const buf = Buffer.alloc(Math.min(64 * 1024, Math.max(0, fs.fstatSync(fd).size - logStart)));
      fs.readSync(fd, buf, 0, buf.length, logStart);
      fs.closeSync(fd);
      said = buf
        .toString('utf8')
        .split('\n')
        .filter((l) => l.startsWith(`${BINARY}:`))
        .join('; ');
    } catch {
      /* the reason stays unknown */
    }
    return new StrataError(
      'E_MOUNT_FAILED',
      `mounting ${s.mountpoint} failed: ${said || why}`,
      'Check that /dev/fuse exists and fusermount3 is installed (Debian: fuse3).',
    );
  };
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(failed(`${BINARY} did not get ready within ${READY_TIMEOUT_MS / 1000} s`));
    }, READY_TIMEOUT_MS);
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = /^ready (\d+)\n/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.once('error', (e) => {
      clearTimeout(t);
      reject(failed(e.message));
    });
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(failed(`${BINARY} exited (${code ?? sig}) before it was ready`));
    });
  });
  child.removeAllListeners('exit');
  child.stdout!.destroy();
  child.unref();
  const att = await attach(s.sock, s.mountpoint).catch((e: Error) => {
    process.kill(pid, 'SIGTERM');
    throw e;
  });
  if (!att) {
    process.kill(pid, 'SIGTERM');
    throw failed(`no answer on ${s.sock}`);
  }
  return att;
}
