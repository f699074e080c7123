/**
 * The team transport: one TeamNode per agent (or standalone relay). It accepts peers (ws server
 * behind an HTTP upgrade handler), dials relays (with capped full-jitter backoff), authenticates
 * both ways from the team secret, exchanges snapshots on every (re)connect, and floods events and
 * presence to every authenticated peer that has not seen them. All state logic lives in
 * state.ts; this file only moves validated frames.
 */
import * as http from 'http';
import * as https from 'https';
import * as crypto from 'crypto';
import { WebSocket, WebSocketServer, RawData } from 'ws';
import {
  CHUNK_BYTES, CloseCodes, Frame, MAX_FRAME, Presence, RegisterWrite, TEAM_PROTOCOL_VERSION, TeamEvent, TeamFile, checkFrame,
} from '../../protocol/team';
import { TeamState } from './state';
import { NonceCache, clientProof, newNonce, proofEquals, serverProof } from './auth';
import { Backoff } from '../../shared/backoff';
import { TokenBucket } from './ratelimit';

export interface NodeLimits {
  /** Authenticated and pending connections, together. */
  maxPeers: number;
  /** Connections that have not finished the handshake. */
  maxPending: number;
  authTimeoutMs: number;
  heartbeatMs: number;
  /** Frames per second per connection, and the burst above it. */
  rate: number;
  burst: number;
  /** A peer whose unsent backlog passes this is dropped as a slow consumer. */
  maxBufferedBytes: number;
}

export const DEFAULT_LIMITS: NodeLimits = {
  maxPeers: 1024,
  maxPending: 64,
  authTimeoutMs: 5000,
  heartbeatMs: 10000,
  rate: 500,
  burst: 2000,
  maxBufferedBytes: 4 * 1024 * 1024,
};

export interface NodeHooks {
  /** Registers changed (remote events or snapshot): apply the team's active set locally. */
  stateChanged(reason: string): void;
  /** This node's own presence fields (without agent, pseq, at). */
  presence(): Omit<Presence, 'agent' | 'pseq' | 'at'>;
  /** A peer's presence arrived or changed. */
  presenceChanged?(p: Presence): void;
  /** Serve a piece of a layer archive for a pull; null when this node cannot. */
  readChunk?(layer: string, digest: string, offset: number, length: number): Promise<{ total: number; data: Buffer } | null>;
  /** An authenticated peer connected or went away. */
  peersChanged?(): void;
}

export interface NodeOptions {
  id: string;
  /** null (standalone relay only): serve the first team whose member authenticates, then only it. */
  team: string | null;
  /** The key derived from the team secret (a function of the team id for a relay). */
  key: Buffer | ((team: string) => Buffer);
  state: TeamState;
  hooks: NodeHooks;
  log: (msg: string) => void;
  listen?: { host: string; port: number; tls?: { cert: Buffer; key: Buffer } };
  connect?: string[];
  limits?: Partial<NodeLimits>;
  /** For tests: a deterministic random source for backoff jitter. */
  random?: () => number;
}

export interface PeerInfo {
  agent: string;
  direction: 'in' | 'out';
  url?: string;
  state: 'connecting' | 'authenticating' | 'connected';
  since: number;
}

interface Conn {
  ws: WebSocket;
  direction: 'in' | 'out';
  url?: string;
  state: 'authenticating' | 'connected';
  agent?: string;
  team?: string;
  myNonce: string;
  theirNonce?: string;
  bucket: TokenBucket;
  /** Heartbeats without any frame or pong since; two in a row end the connection. */
  missed: number;
  since: number;
  timer?: NodeJS.Timeout;
}

interface Dialer {
  url: string;
  backoff: Backoff;
  conn?: Conn;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

interface PendingPull {
  layer: string;
  digest: string;
  source: string;
  conn: Conn;
  onChunk: (f: Extract<Frame, { t: 'chunk' }>) => void;
  onError: (message: string) => void;
}

export class TeamNode {
  readonly limits: NodeLimits;
  private server: http.Server | https.Server | null = null;
  private wss: WebSocketServer | null = null;
  private conns = new Set<Conn>();
  private dialers: Dialer[] = [];
  private heartbeat: NodeJS.Timeout | null = null;
  private nonces: NonceCache;
  readonly presences = new Map<string, Presence>();
  /** Next hop toward each agent: the link its newest presence arrived on. */
  private routes = new Map<string, Conn>();
  private pseq = 0;
  private pulls = new Set<PendingPull>();
  private stopped = false;
  /** Frames delivered to peers (for the benchmark). */
  deliveries = 0;
  port = 0;
  team: string | null;

  constructor(private readonly o: NodeOptions) {
    this.team = o.team;
    this.limits = { ...DEFAULT_LIMITS, ...(o.limits ?? {}) };
    this.nonces = new NonceCache(10 * 60 * 1000, 100_000);
  }

  get id(): string {
    return this.o.id;
  }

  async start(): Promise<void> {
    if (this.o.listen) await this.listen(this.o.listen);
    for (const url of this.o.connect ?? []) this.dial(url);
    this.heartbeat = setInterval(() => this.beat(), this.limits.heartbeatMs);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const d of this.dialers) {
      d.stopped = true;
      if (d.timer) clearTimeout(d.timer);
    }
    for (const c of this.conns) this.close(c, CloseCodes.SHUTTING_DOWN, 'shutting down');
    this.wss?.close();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    for (const c of this.conns) c.ws.terminate();
  }

  // ---- accepting -----------------------------------------------------------------------------------

  private listen(l: { host: string; port: number; tls?: { cert: Buffer; key: Buffer } }): Promise<void> {
    const server = l.tls ? https.createServer({ cert: l.tls.cert, key: l.tls.key }) : http.createServer();
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('Strata team relay: connect with WebSocket\n');
    });
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false, clientTracking: false });
    server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => {});
      // Browsers always send Origin; agents never do. A page must not reach the relay.
      const refuse = (status: number, text: string) => {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      };
      if (req.headers.origin) return refuse(403, 'Forbidden');
      const pending = [...this.conns].filter((c) => c.state === 'authenticating').length;
      if (this.stopped || this.conns.size >= this.limits.maxPeers || pending >= this.limits.maxPending) return refuse(503, 'Busy');
      wss.handleUpgrade(req, socket, head, (ws) => this.adopt(ws, 'in'));
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

  // ---- dialing -------------------------------------------------------------------------------------

  private keyFor(team: string): Buffer {
    return typeof this.o.key === 'function' ? this.o.key(team) : this.o.key;
  }

  private dial(url: string): void {
    if (!this.team) throw new Error('a node without a team cannot dial out');
    const d: Dialer = { url, backoff: new Backoff({ baseMs: 200, capMs: 10000, random: this.o.random }), stopped: false };
    this.dialers.push(d);
    this.connectDialer(d);
  }

  private connectDialer(d: Dialer): void {
    if (d.stopped || this.stopped) return;
    const ws = new WebSocket(d.url, { maxPayload: MAX_FRAME, perMessageDeflate: false, handshakeTimeout: this.limits.authTimeoutMs });
    const conn = this.adopt(ws, 'out', d.url);
    d.conn = conn;
    ws.on('open', () => this.send(conn, { t: 'hello', v: TEAM_PROTOCOL_VERSION, team: this.team!, agent: this.o.id, nonce: conn.myNonce }));
    ws.on('close', () => {
      d.conn = undefined;
      if (d.stopped || this.stopped) return;
      const wait = d.backoff.next();
      d.timer = setTimeout(() => this.connectDialer(d), wait);
      d.timer.unref();
    });
  }

  // ---- one connection --------------------------------------------------------------------------------

  private adopt(ws: WebSocket, direction: 'in' | 'out', url?: string): Conn {
    const conn: Conn = {
      ws, direction, url, state: 'authenticating', myNonce: newNonce(), missed: 0, since: Date.now(),
      bucket: new TokenBucket(this.limits.rate, this.limits.burst),
    };
    this.conns.add(conn);
    // Without an error listener one bad frame would crash the process (see relay-notes.md).
    ws.on('error', (e) => this.o.log(`[team] ${this.label(conn)}: ${e.message}`));
    ws.on('pong', () => (conn.missed = 0));
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(conn, data, isBinary));
    ws.on('close', (code, reason) => {
      this.conns.delete(conn);
      if (conn.timer) clearTimeout(conn.timer);
      for (const p of [...this.pulls]) if (p.conn === conn) p.onError(`the link toward ${p.source} went away`);
      for (const [agent, via] of [...this.routes]) if (via === conn) this.routes.delete(agent);
      if (conn.state === 'connected') {
        this.o.log(`[team] ${this.label(conn)} disconnected (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
        this.o.hooks.peersChanged?.();
      }
    });
    conn.timer = setTimeout(() => {
      if (conn.state !== 'connected') this.close(conn, CloseCodes.AUTH_TIMEOUT, 'handshake timed out');
    }, this.limits.authTimeoutMs);
    conn.timer.unref();
    return conn;
  }

  private label(c: Conn): string {
    return `${c.direction === 'out' ? `relay ${c.url}` : 'peer'}${c.agent ? ` ${c.agent}` : ''}`;
  }

  private close(c: Conn, code: number, why: string): void {
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

  /** Send a frame (or one already serialized, when the same goes to many peers). */
  private send(c: Conn, f: Frame | string): boolean {
    if (c.ws.readyState !== WebSocket.OPEN) return false;
    if (c.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.o.log(`[team] dropping slow ${this.label(c)}: ${c.ws.bufferedAmount} bytes unsent`);
      c.ws.terminate();
      return false;
    }
    c.ws.send(typeof f === 'string' ? f : JSON.stringify(f));
    this.deliveries++;
    return true;
  }

  private onMessage(c: Conn, data: RawData, isBinary: boolean): void {
    c.missed = 0; // any frame is a sign of life
    if (!c.bucket.take()) return this.close(c, CloseCodes.RATE_LIMITED, 'too many frames');
    if (isBinary) return this.close(c, CloseCodes.BAD_FRAME, 'binary frames are not part of the protocol');
    const checked = checkFrame(data.toString());
    if (!checked.ok) return this.close(c, checked.close, checked.message);
    const f = checked.frame;
    try {
      if (c.state === 'authenticating') this.handshake(c, f);
      else this.dispatch(c, f);
    } catch (e) {
      this.o.log(`[team] ${this.label(c)}: ${(e as Error).stack ?? e}`);
      this.close(c, CloseCodes.BAD_FRAME, 'frame could not be handled');
    }
  }

  /** hello → challenge (server proves) → auth (client proves) → welcome. Nothing else before. */
  private handshake(c: Conn, f: Frame): void {
    if (c.direction === 'in') {
      if (f.t === 'hello' && !c.theirNonce) {
        if (f.v !== TEAM_PROTOCOL_VERSION) return this.close(c, CloseCodes.VERSION, `protocol ${f.v} not supported (this side speaks ${TEAM_PROTOCOL_VERSION})`);
        if (this.team !== null && f.team !== this.team) return this.close(c, CloseCodes.WRONG_TEAM, 'wrong team');
        if (f.agent === this.o.id) return this.close(c, CloseCodes.DUPLICATE_AGENT, 'connected to itself');
        if (this.nonces.seen(f.nonce)) return this.close(c, CloseCodes.AUTH_FAILED, 'replayed hello');
        c.theirNonce = f.nonce;
        c.agent = f.agent;
        c.team = f.team;
        const proof = serverProof(this.keyFor(f.team), f.team, f.nonce, c.myNonce, this.o.id, f.agent);
        this.send(c, { t: 'challenge', v: TEAM_PROTOCOL_VERSION, team: f.team, agent: this.o.id, nonce: c.myNonce, proof });
        return;
      }
      if (f.t === 'auth' && c.theirNonce && c.agent && c.team) {
        const want = clientProof(this.keyFor(c.team), c.team, c.myNonce, c.theirNonce, c.agent, this.o.id);
        if (!proofEquals(f.proof, want)) return this.close(c, CloseCodes.AUTH_FAILED, 'authentication failed');
        if (this.team === null) {
          this.team = c.team;
          this.o.log(`[team] serving team ${c.team}`);
        } else if (this.team !== c.team) {
          return this.close(c, CloseCodes.WRONG_TEAM, 'wrong team');
        }
        this.send(c, { t: 'welcome' });
        return this.established(c);
      }
      return this.close(c, CloseCodes.AUTH_FAILED, `unexpected ${f.t} before authentication`);
    }
    const team = this.team!;
    const key = this.keyFor(team);
    if (f.t === 'challenge' && !c.theirNonce) {
      if (f.v !== TEAM_PROTOCOL_VERSION) return this.close(c, CloseCodes.VERSION, `protocol ${f.v} not supported`);
      if (f.team !== team) return this.close(c, CloseCodes.WRONG_TEAM, 'wrong team');
      const want = serverProof(key, team, c.myNonce, f.nonce, f.agent, this.o.id);
      if (!proofEquals(f.proof, want)) return this.close(c, CloseCodes.AUTH_FAILED, 'the relay does not know the team secret');
      c.theirNonce = f.nonce;
      c.agent = f.agent;
      this.send(c, { t: 'auth', proof: clientProof(key, team, f.nonce, c.myNonce, this.o.id, f.agent) });
      return;
    }
    if (f.t === 'welcome' && c.theirNonce) return this.established(c);
    return this.close(c, CloseCodes.AUTH_FAILED, `unexpected ${f.t} before authentication`);
  }

  private established(c: Conn): void {
    c.state = 'connected';
    if (c.timer) clearTimeout(c.timer);
    c.since = Date.now();
    const d = this.dialers.find((x) => x.conn === c);
    d?.backoff.reset();
    this.o.log(`[team] ${this.label(c)} connected`);
    // Catch-up: each side says what it has seen; the other answers with the events it lacks (one
    // frame each, so they are forwarded onward like live ones), then with its registers.
    this.send(c, { t: 'have', seen: this.o.state.seenVector() });
    this.send(c, { t: 'presence', presence: this.ownPresence(false) });
    for (const p of this.presences.values()) this.send(c, { t: 'presence', presence: p });
    this.o.hooks.peersChanged?.();
  }

  private dispatch(c: Conn, f: Frame): void {
    switch (f.t) {
      case 'have': {
        for (const ev of this.o.state.missingFor(f.seen)) this.send(c, { t: 'event', event: ev });
        this.send(c, { t: 'snapshot', ...this.o.state.snapshot({ maxEvents: 0 }) });
        return;
      }
      case 'snapshot': {
        const { changed, fresh } = this.o.state.mergeSnapshot(f);
        for (const ev of fresh) this.forward(c, { t: 'event', event: ev });
        if (changed) {
          // Registers learnt only from a snapshot (their events fell out of every history) must
          // reach the other peers too; they merge and pass it on only if it changes something.
          this.forward(c, { t: 'snapshot', ...this.o.state.snapshot({ maxEvents: 0 }) });
        }
        if (changed || fresh.length) this.o.hooks.stateChanged('snapshot');
        return;
      }
      case 'event': {
        const r = this.o.state.receive(f.event);
        if (!r.fresh) return;
        this.forward(c, f);
        // Persist and acknowledge every new decision, even one that changes no value.
        this.o.hooks.stateChanged('event');
        return;
      }
      case 'presence': {
        const p = f.presence;
        if (p.agent === this.o.id) return;
        const old = this.presences.get(p.agent);
        if (old && old.pseq >= p.pseq) return;
        this.presences.set(p.agent, p);
        this.routes.set(p.agent, c);
        this.forward(c, f);
        this.o.hooks.presenceChanged?.(p);
        return;
      }
      case 'pull':
      case 'chunk':
      case 'pull-error': {
        if (f.to !== this.o.id) {
          // Not for us: pass it one hop on toward its addressee, or say there is no way.
          const next = this.routes.get(f.to);
          if (next && next !== c && next.state === 'connected') this.send(next, f);
          else if (f.t === 'pull') this.send(c, { t: 'pull-error', to: f.from, from: this.o.id, layer: f.layer, message: `no route to ${f.to}` });
          return;
        }
        if (f.t === 'pull') {
          void this.servePull(c, f);
          return;
        }
        for (const p of this.pulls) {
          if (p.source === f.from && p.layer === f.layer) {
            if (f.t === 'chunk') p.onChunk(f);
            else p.onError(f.message);
          }
        }
        return;
      }
      case 'error':
        this.o.log(`[team] ${this.label(c)} reported: ${f.code} ${f.message}`);
        return;
      default:
        this.close(c, CloseCodes.BAD_FRAME, `unexpected ${f.t} after authentication`);
    }
  }

  /** Send to every authenticated peer except the one it came from. */
  private forward(from: Conn | null, f: Frame): void {
    let text: string | null = null;
    for (const c of this.conns) {
      if (c !== from && c.state === 'connected') this.send(c, (text ??= JSON.stringify(f)));
    }
  }

  // ---- decisions and presence ------------------------------------------------------------------------

  /** Record a local decision and broadcast it. */
  decide(writes: RegisterWrite[], user: string, host: string, reverts?: string, team?: TeamFile): TeamEvent {
    const ev = this.o.state.local(writes, user, host, reverts, team);
    this.forward(null, { t: 'event', event: ev });
    return ev;
  }

  private ownPresence(bump: boolean): Presence {
    // Time-based, so a restarted node's presence is newer than what peers remember of it.
    if (bump || this.pseq === 0) this.pseq = Math.max(this.pseq + 1, Date.now());
    return { ...this.o.hooks.presence(), agent: this.o.id, pseq: this.pseq, at: Date.now() };
  }

  /** Tell everyone what this node runs now (after applying a change). */
  announce(): void {
    this.forward(null, { t: 'presence', presence: this.ownPresence(true) });
  }

  private beat(): void {
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
    this.announce();
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

  // ---- layer pulls -------------------------------------------------------------------------------------

  private async servePull(c: Conn, f: Extract<Frame, { t: 'pull' }>): Promise<void> {
    const r = this.o.hooks.readChunk ? await this.o.hooks.readChunk(f.layer, f.digest, f.offset, CHUNK_BYTES).catch(() => null) : null;
    if (!r) {
      this.send(c, { t: 'pull-error', to: f.from, from: this.o.id, layer: f.layer, message: `${this.o.id} does not have ${f.layer} at ${f.digest}` });
      return;
    }
    const sha256 = crypto.createHash('sha256').update(r.data).digest('hex');
    this.send(c, { t: 'chunk', to: f.from, from: this.o.id, layer: f.layer, digest: f.digest, offset: f.offset, total: r.total, sha256, data: r.data.toString('base64') });
  }

  /** Agents a pull can reach now: directly connected, or through the link their presence came on. */
  reachable(agent: string): boolean {
    const c = this.routes.get(agent);
    return !!c && c.state === 'connected' && c.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Fetch chunks of a layer archive from `agent` (routed hop by hop), starting at `offset`. Each chunk is checked against its hash; a bad one is asked for again (up to
   * `retries` times). Resolves when `total` bytes have been handed to `write`.
   */
  pullFrom(
    agent: string,
    layer: string,
    digest: string,
    offset: number,
    write: (offset: number, data: Buffer, total: number) => Promise<void>,
    opts: { retries?: number; chunkTimeoutMs?: number } = {},
  ): Promise<void> {
    const conn = this.routes.get(agent);
    if (!conn || !this.reachable(agent)) return Promise.reject(new Error(`no route to ${agent}`));
    const retries = opts.retries ?? 3;
    return new Promise<void>((resolve, reject) => {
      let failures = 0;
      let timer: NodeJS.Timeout | undefined;
      let pos = offset;
      const ask = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => done(new Error(`${agent} did not send ${layer} chunk at ${pos} in time`)), opts.chunkTimeoutMs ?? 15000);
        this.send(conn, { t: 'pull', to: agent, from: this.o.id, layer, digest, offset: pos });
      };
      const done = (e?: Error) => {
        if (timer) clearTimeout(timer);
        this.pulls.delete(pending);
        if (e) reject(e);
        else resolve();
      };
      const pending: PendingPull = {
        layer, digest, conn, source: agent,
        onError: (m) => done(new Error(m)),
        onChunk: (f) => {
          if (f.offset !== pos || f.digest !== digest) return;
          const data = Buffer.from(f.data, 'base64');
          const sum = crypto.createHash('sha256').update(data).digest('hex');
          if (sum !== f.sha256 || data.length === 0 && pos < f.total) {
            failures++;
            this.o.log(`[team] chunk of ${layer} at ${pos} from ${agent} failed its check (${failures}/${retries})`);
            if (failures > retries) return done(new Error(`chunk of ${layer} at ${pos} from ${agent} failed its check ${failures} times`));
            return ask();
          }
          write(pos, data, f.total).then(
            () => {
              pos += data.length;
              if (pos >= f.total) done();
              else ask();
            },
            (e) => done(e as Error),
          );
        },
      };
      this.pulls.add(pending);
      ask();
    });
  }
}
