/**
 * A client of strata-viewd's control socket (docs/view-core.md): one request per line, one reply
 * per request (`ok ...` or `err CODE message`), answered in order.
 */
import * as net from 'net';
import { pctDecode, pctEncode } from './ruletable';

export class ViewdError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ViewdHello {
  pid: number;
  mountpoint: string;
  generation: number;
}

export interface ViewdStats {
  nodes: number;
  lookups: number;
  forgets: number;
  invalidations: number;
  generation: number;
  /** WRITE requests served (a write in passthrough reaches the file without one). */
  writes: number;
  /** GETXATTR requests (without KILLPRIV_V2 the kernel asks for security.capability before every write). */
  getxattrs: number;
}

/** What a warm-up listed (view-core.md, "Warm-up"). */
export interface ViewdWarmed {
  folders: number;
  names: number;
  ms: number;
  /** Stopped at a bound: folders beyond it stay cold. */
  partial: boolean;
}

export interface ViewdOpenFile {
  pid: number;
  /** The layer whose file is open, null for the base. */
  layer: string | null;
  /** View path at open, as bytes (names need not be UTF-8). */
  path: Buffer;
}

interface Pending {
  /** Lines after the first one that belong to the reply (open-files: its count). */
  more: ((first: string) => number) | null;
  lines: string[];
  resolve(lines: string[]): void;
  reject(e: Error): void;
}

export class ViewdControl {
  private buf = '';
  private readonly pending: Pending[] = [];
  private closed: Error | null = null;
  private readonly closeListeners: Array<(e: Error) => void> = [];

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('latin1'); // replies are ASCII; keep every byte as one char
    sock.on('data', (d: string) => this.onData(d));
    const end = (e?: Error): void => {
      if (this.closed) return;
      this.closed = e ?? new ViewdError('E_CLOSED', 'the view server closed the control connection');
      for (const p of this.pending.splice(0)) p.reject(this.closed);
      for (const fn of this.closeListeners) fn(this.closed);
    };
    sock.on('error', end);
    sock.on('close', () => end());
  }

  static connect(sockPath: string, timeoutMs = 5000): Promise<ViewdControl> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(sockPath);
      const t = setTimeout(() => {
        s.destroy();
        reject(new ViewdError('E_TIMEOUT', `no answer from ${sockPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new ViewdControl(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const p = this.pending[0];
      if (!p) continue;
      p.lines.push(line);
      const want = p.more && p.lines[0].startsWith('ok ') ? 1 + p.more(p.lines[0]) : 1;
      if (p.lines.length >= want) {
        this.pending.shift();
        p.resolve(p.lines);
      }
    }
  }

  /** Called once when the connection ends, for whatever reason (the server died, or close()). */
  onClose(fn: (e: Error) => void): void {
    if (this.closed) fn(this.closed);
    else this.closeListeners.push(fn);
  }

  /**
   * Sends one request and resolves with its reply lines; `err` replies reject with ViewdError. A
   * request not answered within `timeoutMs` rejects with E_TIMEOUT; its reply, when it comes, is
   * dropped (replies come in order, so the next request still gets its own).
   */
  request(line: string, body?: Buffer, more: Pending['more'] = null, timeoutMs = 0): Promise<string[]> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise<string[]>((resolve, reject) => {
      let settled = false;
      const once =
        <T>(fn: (v: T) => void) =>
        (v: T) => {
          if (settled) return;
          settled = true;
          if (t) clearTimeout(t);
          fn(v);
        };
      const t = timeoutMs
        ? setTimeout(
            () => once(reject)(new ViewdError('E_TIMEOUT', `no reply to "${line.slice(0, 40)}" within ${timeoutMs} ms`)),
            timeoutMs,
          )
        : null;
      this.pending.push({ more, lines: [], resolve: once(resolve), reject: once(reject) });
      this.sock.write(Buffer.concat([Buffer.from(line + '\n', 'latin1'), body ?? Buffer.alloc(0)]));
    }).then((lines) => {
      const m = /^err (\S+) ?(.*)$/.exec(lines[0]);
      if (m) throw new ViewdError(m[1], m[2]);
      if (!lines[0].startsWith('ok')) throw new ViewdError('E_PROTOCOL', `unexpected reply "${lines[0]}"`);
      return lines;
    });
  }

  async hello(timeoutMs = 0): Promise<ViewdHello> {
    const [l] = await this.request('hello 1', undefined, null, timeoutMs);
    const m = /^ok viewd 1 pid (\d+) mountpoint (\S+) generation (\d+)$/.exec(l);
    if (!m) throw new ViewdError('E_PROTOCOL', `unexpected hello reply "${l}"`);
    return { pid: Number(m[1]), mountpoint: pctDecode(m[2]).toString('utf8'), generation: Number(m[3]) };
  }

  /** Installs a table; resolves once the kernel caches of what changed were invalidated. */
  async rules(text: string, timeoutMs = 0): Promise<{ generation: number; invalidated: number }> {
    const body = Buffer.from(text, 'utf8');
    const [l] = await this.request(`rules ${body.length}`, body, null, timeoutMs);
    const m = /^ok generation (\d+) invalidated (\d+)$/.exec(l);
    if (!m) throw new ViewdError('E_PROTOCOL', `unexpected rules reply "${l}"`);
    return { generation: Number(m[1]), invalidated: Number(m[2]) };
  }

  /** The server's resolution of a view path, as text (for the differential test). */
  async resolve(viewPath: string | Buffer): Promise<string> {
    const [l] = await this.request(`resolve ${pctEncode(viewPath)}`);
    return l.slice(3);
  }

  async openFiles(timeoutMs = 0): Promise<ViewdOpenFile[]> {
    const lines = await this.request('open-files', undefined, (first) => Number(first.split(' ')[1]) || 0, timeoutMs);
    return lines.slice(1).map((l) => {
      const [pid, layer, p] = l.split(' ');
      return { pid: Number(pid), layer: layer === '-' ? null : layer, path: pctDecode(p ?? '') };
    });
  }

  async stats(): Promise<ViewdStats> {
    const [l] = await this.request('stats');
    const f = l.split(' ');
    const get = (k: string): number => Number(f[f.indexOf(k) + 1]);
    return {
      nodes: get('nodes'),
      lookups: get('lookups'),
      forgets: get('forgets'),
      invalidations: get('invalidations'),
      generation: get('generation'),
      writes: get('writes'),
      getxattrs: get('getxattrs'),
    };
  }

  /** Lists the mount top down, at most `names` names for at most `ms` ms, so the kernel holds them. */
  async warm(names: number, ms: number, timeoutMs = 0): Promise<ViewdWarmed> {
    const [l] = await this.request(`warm ${names} ${ms}`, undefined, null, timeoutMs);
    const m = /^ok folders (\d+) names (\d+) ms (\d+) (complete|partial)$/.exec(l);
    if (!m) throw new ViewdError('E_PROTOCOL', `unexpected warm reply "${l}"`);
    return { folders: Number(m[1]), names: Number(m[2]), ms: Number(m[3]), partial: m[4] === 'partial' };
  }

  /** The server replies, then unmounts and exits. */
  async unmount(timeoutMs = 0): Promise<void> {
    await this.request('unmount', undefined, null, timeoutMs);
  }

  close(): void {
    this.sock.destroy();
  }
}
