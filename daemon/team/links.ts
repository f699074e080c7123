/**
 * The team transport: WebSocket links to peers. It accepts peers (a ws server behind an HTTP
 * upgrade handler), dials relays (with capped full-jitter backoff), enforces the limits (peers,
 * pending handshakes shared by address (admission.ts), handshake time, frame rate, slow consumers,
 * silent peers) and checks every frame before handing it on. It only moves frames: handshake.ts
 * and node.ts say what they mean.
 */
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import { WebSocket, WebSocketServer, RawData } from 'ws';
import { CloseCodes, Frame, MAX_FRAME, checkFrame } from '../../protocol/team';
import { newNonce } from './auth';
import { Backoff } from '../../shared/backoff';
import { TokenBucket } from './ratelimit';
import { DEFAULT_LIMITS, NodeLimits } from './limits';
import { Admission, PendingSlot } from './admission';

export { DEFAULT_LIMITS };
export type { NodeLimits };

/** Frames a peer may send beyond the burst when it catches this node up: its history (1000 events by default), winners and presences. */
export function catchUpCredit(limits: NodeLimits): number {
  return 1000 + limits.maxRegisters + limits.maxOrigins;
}

export interface ListenOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
}

/** One link. The handshake fields are filled in by handshake.ts. */
export interface Conn {
  ws: WebSocket;
  direction: 'in' | 'out';
  url?: string;
  state: 'authenticating' | 'connected';
  agent?: string;
  team?: string;
  myNonce: string;
  theirNonce?: string;
  /** The public key the peer offered in the handshake (checked against its id there). */
  theirKey?: string;
  /** An accepted link's slot among the pending ones, until it authenticates. */
  slot?: PendingSlot;
  /** The socket under ws, corked while this tick's frames to it gather (see send). */
  socket?: net.Socket;
  corked?: boolean;
  bucket: TokenBucket;
  /** Heartbeats without any frame or pong since; two in a row end the connection. */
  missed: number;
  since: number;
  timer?: NodeJS.Timeout;
}

export interface PeerInfo {
  agent: string;
  direction: 'in' | 'out';
  url?: string;
  state: 'connecting' | 'authenticating' | 'connected';
  since: number;
}

export interface LinkHandlers {
  /** A checked frame arrived. */
  frame(c: Conn, f: Frame): void;
  /** A dialed link opened: start the handshake. */
  opened(c: Conn): void;
  /** A link went away; `wasConnected` when it had finished the handshake. */
  closed(c: Conn, wasConnected: boolean): void;
}

interface Dialer {
  url: string;
  backoff: Backoff;
  conn?: Conn;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

export class Links {
  readonly limits: NodeLimits;
  port = 0;
  private server: http.Server | https.Server | null = null;
  private wss: WebSocketServer | null = null;
  private conns = new Set<Conn>();
  private dialers: Dialer[] = [];
  private stopped = false;
  readonly admission: Admission;
  /** Links whose socket is corked until the end of this tick. */
  private corked: Conn[] = [];
  private readonly uncork = () => {
    for (const c of this.corked.splice(0)) {
      c.corked = false;
      c.socket!.uncork();
    }
  };

  constructor(
    private readonly o: {
      handlers: LinkHandlers;
      log: (msg: string) => void;
      limits?: Partial<NodeLimits>;
      /** For tests: a deterministic random source for backoff jitter. */
      random?: () => number;
    },
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...(o.limits ?? {}) };
    this.admission = new Admission(this.limits);
  }

  listen(l: ListenOptions): Promise<void> {
    const server = l.tls ? https.createServer({ cert: l.tls.cert, key: l.tls.key }) : http.createServer();
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('Strata team relay: connect with WebSocket\n');
    });
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false, clientTracking: false });
    // Every accepted socket holds a pending slot from its first byte until it authenticates. The
    // slot is found again by address and port: with TLS the upgrade comes on another socket object.
    const slots = new Map<string, PendingSlot>();
    const keyOf = (s: net.Socket) => `${s.remoteAddress}|${s.remotePort}`;
    server.on('connection', (socket: net.Socket) => {
      socket.on('error', () => {});
      const key = keyOf(socket);
      const slot = this.stopped
        ? null
        : this.admission.admit(socket.remoteAddress, () => {
            const conn = [...this.conns].find((c) => c.slot === slot);
            if (conn) this.close(conn, CloseCodes.AUTH_TIMEOUT, 'handshake timed out');
            socket.destroy();
          });
      if (!slot) return void socket.destroy();
      slots.set(key, slot);
      socket.once('close', () => {
        slots.delete(key);
        this.admission.release(slot);
      });
    });
    server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => {});
      // Browsers always send Origin; agents never do. A page must not reach the relay.
      const refuse = (status: number, text: string) => {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      };
      if (req.headers.origin) return refuse(403, 'Forbidden');
      const slot = slots.get(keyOf(socket as net.Socket));
      if (this.stopped || !slot || this.conns.size >= this.limits.maxPeers) return refuse(503, 'Busy');
      wss.handleUpgrade(req, socket, head, (ws) => {
        const c = this.adopt(ws, 'in');
        c.slot = slot;
        c.socket = socket as net.Socket;
      });
    });
    this.server = server;
    this.wss = wss;
    return new Promise((res, rej) => {
      server.once('error', rej);
      server.listen(l.port, l.host, () => {
        const a = server.address();
        this.port = typeof a === 'object' && a ? a.port : l.port;
        res();
      });
    });
  }

  /** Keep a link to `url` open, redialing with backoff whenever it drops. */
  dial(url: string): void {
    const d: Dialer = { url, backoff: new Backoff({ baseMs: 200, capMs: 10000, random: this.o.random }), stopped: false };
    this.dialers.push(d);
    this.connectDialer(d);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const d of this.dialers) {
      d.stopped = true;
      if (d.timer) clearTimeout(d.timer);
    }
    for (const c of this.conns) this.close(c, CloseCodes.SHUTTING_DOWN, 'shutting down');
    this.wss?.close();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    for (const c of this.conns) c.ws.terminate();
  }

  /** The handshake on `c` succeeded. */
  established(c: Conn): void {
    c.state = 'connected';
    this.expectCatchUp(c);
    if (c.timer) clearTimeout(c.timer);
    if (c.slot) this.admission.release(c.slot);
    c.since = Date.now();
    this.dialers.find((x) => x.conn === c)?.backoff.reset();
    this.o.log(`[team] ${this.label(c)} connected`);
  }

  /**
   * Send a frame (or one already serialized, when the same goes to many peers). The socket stays
   * corked until the end of the tick: every frame sent to it meanwhile (a burst of events read in
   * one chunk, forwarded to everyone) leaves in one write, not one system call per frame.
   */
  send(c: Conn, f: Frame | Buffer): boolean {
    if (c.ws.readyState !== WebSocket.OPEN) return false;
    if (c.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.o.log(`[team] dropping slow ${this.label(c)}: ${c.ws.bufferedAmount} bytes unsent`);
      c.ws.terminate();
      return false;
    }
    if (c.socket && !c.corked) {
      c.corked = true;
      c.socket.cork();
      if (this.corked.push(c) === 1) process.nextTick(this.uncork);
    }
    // Text frames always; a Buffer is the same frame's UTF-8, encoded once for every peer.
    c.ws.send(Buffer.isBuffer(f) ? f : JSON.stringify(f), { binary: false });
    return true;
  }

  /**
   * This node asks every authenticated peer to catch it up again (`strata team reload`): each may
   * answer with as much as on connect. Only this node's asking earns a link that credit.
   */
  askCatchUp(have: Extract<Frame, { t: 'have' }>): void {
    const bytes = Buffer.from(JSON.stringify(have));
    for (const c of this.conns) {
      if (c.state !== 'connected') continue;
      this.expectCatchUp(c);
      this.send(c, bytes);
    }
  }

  /** Catching up, a peer sends its history, winners and presences at once: all of it may come. */
  private expectCatchUp(c: Conn): void {
    c.bucket.credit(catchUpCredit(this.limits));
  }

  /** Send to every authenticated peer except the one it came from (a Buffer: the frame already encoded). */
  forward(from: Conn | null, f: Frame | Buffer): void {
    let bytes: Buffer | null = Buffer.isBuffer(f) ? f : null;
    for (const c of this.conns) {
      if (c !== from && c.state === 'connected') this.send(c, (bytes ??= Buffer.from(JSON.stringify(f))));
    }
  }

  close(c: Conn, code: number, why: string): void {
    if (c.ws.readyState === WebSocket.OPEN || c.ws.readyState === WebSocket.CONNECTING) {
      this.o.log(`[team] closing ${this.label(c)}: ${why} (${code})`);
      try {
        if (c.ws.readyState === WebSocket.OPEN) this.send(c, { t: 'error', code: String(code), message: why });
        c.ws.close(code, why.slice(0, 120));
      } catch {
        c.ws.terminate();
      }
    }
    // A peer that ignores the close handshake is cut off.
    setTimeout(() => c.ws.terminate(), 2000).unref();
  }

  /** Ping every authenticated link; end those silent for two beats. */
  beat(): void {
    for (const c of this.conns) {
      if (c.state !== 'connected') continue;
      if (c.missed >= 2) {
        this.o.log(`[team] ${this.label(c)} is silent; terminating`);
        c.ws.terminate();
        continue;
      }
      c.missed++;
      try {
        c.ws.ping();
      } catch {
        /* closing */
      }
    }
  }

  peers(): PeerInfo[] {
    const out: PeerInfo[] = [];
    for (const c of this.conns) {
      out.push({ agent: c.agent ?? '?', direction: c.direction, url: c.url, state: c.state, since: c.since });
    }
    for (const d of this.dialers) {
      if (!d.conn) out.push({ agent: '?', direction: 'out', url: d.url, state: 'connecting', since: Date.now() });
    }
    return out;
  }

  connectedAgents(): string[] {
    return [...this.conns].filter((c) => c.state === 'connected' && c.agent).map((c) => c.agent!);
  }

  label(c: Conn): string {
    return `${c.direction === 'out' ? `relay ${c.url}` : 'peer'}${c.agent ? ` ${c.agent}` : ''}`;
  }

  private connectDialer(d: Dialer): void {
    if (d.stopped || this.stopped) return;
    const ws = new WebSocket(d.url, { maxPayload: MAX_FRAME, perMessageDeflate: false, handshakeTimeout: this.limits.authTimeoutMs });
    const conn = this.adopt(ws, 'out', d.url);
    d.conn = conn;
    ws.on('upgrade', (res) => (conn.socket = res.socket as net.Socket));
    ws.on('open', () => this.o.handlers.opened(conn));
    ws.on('close', () => {
      d.conn = undefined;
      if (d.stopped || this.stopped) return;
      const wait = d.backoff.next();
      d.timer = setTimeout(() => this.connectDialer(d), wait);
      d.timer.unref();
    });
  }

  private adopt(ws: WebSocket, direction: 'in' | 'out', url?: string): Conn {
    const conn: Conn = {
      ws,
      direction,
      url,
      state: 'authenticating',
      myNonce: newNonce(),
      missed: 0,
      since: Date.now(),
      // A link this node dialed (a relay of the team file) carries the whole team's traffic, which
      // that relay limited per sender already; one a peer dialed here carries that peer's.
      bucket:
        direction === 'out'
          ? new TokenBucket(this.limits.rate * 20, this.limits.burst * 20)
          : new TokenBucket(this.limits.rate, this.limits.burst),
    };
    this.conns.add(conn);
    // Without an error listener one bad frame would crash the process (see relay-notes.md).
    ws.on('error', (e) => this.o.log(`[team] ${this.label(conn)}: ${e.message}`));
    ws.on('pong', () => (conn.missed = 0));
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on('close', (code, reason) => {
      this.conns.delete(conn);
      if (conn.timer) clearTimeout(conn.timer);
      const wasConnected = conn.state === 'connected';
      if (wasConnected) this.o.log(`[team] ${this.label(conn)} disconnected (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
      this.o.handlers.closed(conn, wasConnected);
    });
    // An accepted link's deadline is its pending slot's (admission.ts); a dialed one has its own.
    if (direction === 'out') {
      conn.timer = setTimeout(() => {
        if (conn.state !== 'connected') this.close(conn, CloseCodes.AUTH_TIMEOUT, 'handshake timed out');
      }, this.limits.authTimeoutMs);
      conn.timer.unref();
    }
    return conn;
  }

  private onMessage(c: Conn, data: RawData, isBinary: boolean): void {
    // ws still delivers what arrives while a link closes: after the frame that closed it, nothing
    // counts (a `synced` taken there would close gaps that the frames refused before it left).
    if (c.ws.readyState !== WebSocket.OPEN) return;
    c.missed = 0; // any frame is a sign of life
    if (!c.bucket.take()) return this.close(c, CloseCodes.RATE_LIMITED, 'too many frames');
    if (isBinary) return this.close(c, CloseCodes.BAD_FRAME, 'binary frames are not part of the protocol');
    const checked = checkFrame(data.toString());
    if (!checked.ok) return this.close(c, checked.close, checked.message);
    try {
      this.o.handlers.frame(c, checked.frame);
    } catch (e) {
      this.o.log(`[team] ${this.label(c)}: ${(e as Error).stack ?? e}`);
      this.close(c, CloseCodes.BAD_FRAME, 'frame could not be handled');
    }
  }
}
