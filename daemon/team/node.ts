/**
 * One member of the team network: an agent, or a standalone relay. Over the links (links.ts),
 * once a peer has passed the handshake (handshake.ts), it keeps replicas in step: on every
 * (re)connect each side says what it has seen and gets the events it lacks and the registers;
 * after that, events and presence are flooded to every peer that has not seen them. Layer
 * archives travel in chunks (chunks.ts). What the state means is state.ts's.
 */
import { CloseCodes, Frame, Presence, TeamEvent } from '../../protocol/team';
import { TeamState } from './state';
import { Handshake } from './handshake';
import { ChunkPulls, ReadChunk } from './chunks';
import { Conn, Links, ListenOptions, NodeLimits, PeerInfo } from './links';

export interface NodeHooks {
  /** Registers changed (remote events or snapshot): apply the team's active set locally. */
  stateChanged(reason: string): void;
  /** This node's own presence fields (without agent, pseq, at). */
  presence(): Omit<Presence, 'agent' | 'pseq' | 'at'>;
  /** A peer's presence arrived or changed. */
  presenceChanged?(p: Presence): void;
  /** Serve a piece of a layer archive for a pull; null when this node cannot. */
  readChunk?: ReadChunk;
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
  listen?: ListenOptions;
  connect?: string[];
  limits?: Partial<NodeLimits>;
  /** For tests: a deterministic random source for backoff jitter. */
  random?: () => number;
}

export class TeamNode {
  readonly presences = new Map<string, Presence>();
  /** Next hop toward each agent: the link its newest presence arrived on. */
  private readonly routes = new Map<string, Conn>();
  private readonly links: Links;
  private readonly handshake: Handshake;
  private readonly chunks: ChunkPulls;
  private heartbeat: NodeJS.Timeout | null = null;
  private pseq = 0;

  constructor(private readonly o: NodeOptions) {
    this.links = new Links({
      log: o.log,
      limits: o.limits,
      random: o.random,
      handlers: {
        opened: (c) => this.handshake.hello(c),
        frame: (c, f) => (c.state === 'authenticating' ? this.handshake.step(c, f) : this.dispatch(c, f)),
        closed: (c, wasConnected) => this.closed(c, wasConnected),
      },
    });
    this.handshake = new Handshake({
      id: o.id,
      team: o.team,
      key: o.key,
      links: this.links,
      log: o.log,
      established: (c) => this.established(c),
    });
    this.chunks = new ChunkPulls({ id: o.id, links: this.links, routes: this.routes, readChunk: o.hooks.readChunk, log: o.log });
  }

  get id(): string {
    return this.o.id;
  }

  /** The team served (a relay started without one learns it from its first member). */
  get team(): string | null {
    return this.handshake.team;
  }

  get port(): number {
    return this.links.port;
  }

  get limits(): NodeLimits {
    return this.links.limits;
  }

  async start(): Promise<void> {
    if (this.o.listen) await this.links.listen(this.o.listen);
    for (const url of this.o.connect ?? []) {
      if (!this.team) throw new Error('a node without a team cannot dial out');
      this.links.dial(url);
    }
    this.heartbeat = setInterval(() => {
      this.links.beat();
      this.announce();
    }, this.links.limits.heartbeatMs);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.links.stop();
  }

  /** Send a decision made here (already recorded in the state) to every peer. */
  publish(ev: TeamEvent): void {
    this.links.forward(null, { t: 'event', event: ev });
  }

  /** Tell everyone what this node runs now (after applying a change). */
  announce(): void {
    this.links.forward(null, { t: 'presence', presence: this.ownPresence(true) });
  }

  peers(): PeerInfo[] {
    return this.links.peers();
  }

  connectedAgents(): string[] {
    return this.links.connectedAgents();
  }

  reachable(agent: string): boolean {
    return this.chunks.reachable(agent);
  }

  /** Fetch a layer archive from `agent` in chunks (see chunks.ts). */
  pullFrom(...args: Parameters<ChunkPulls['fetch']>): Promise<void> {
    return this.chunks.fetch(...args);
  }

  private established(c: Conn): void {
    this.links.established(c);
    // Catch-up: each side says what it has seen; the other answers with the events it lacks (one
    // frame each, so they are forwarded onward like live ones), then with its registers.
    this.links.send(c, { t: 'have', seen: this.o.state.seenVector() });
    this.links.send(c, { t: 'presence', presence: this.ownPresence(false) });
    for (const p of this.presences.values()) this.links.send(c, { t: 'presence', presence: p });
    this.o.hooks.peersChanged?.();
  }

  private closed(c: Conn, wasConnected: boolean): void {
    this.chunks.linkClosed(c);
    for (const [agent, via] of [...this.routes]) if (via === c) this.routes.delete(agent);
    if (wasConnected) this.o.hooks.peersChanged?.();
  }

  private dispatch(c: Conn, f: Frame): void {
    const state = this.o.state;
    switch (f.t) {
      case 'have': {
        for (const ev of state.missingFor(f.seen)) this.links.send(c, { t: 'event', event: ev });
        this.links.send(c, { t: 'snapshot', ...state.snapshot({ maxEvents: 0 }) });
        return;
      }
      case 'snapshot': {
        const { changed, fresh } = state.mergeSnapshot(f);
        for (const ev of fresh) this.links.forward(c, { t: 'event', event: ev });
        if (changed) {
          // Registers learnt only from a snapshot (their events fell out of every history) must
          // reach the other peers too; they merge and pass it on only if it changes something.
          this.links.forward(c, { t: 'snapshot', ...state.snapshot({ maxEvents: 0 }) });
        }
        if (changed || fresh.length) this.o.hooks.stateChanged('snapshot');
        return;
      }
      case 'event': {
        const r = state.receive(f.event);
        if (!r.fresh) return;
        this.links.forward(c, f);
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
        this.links.forward(c, f);
        this.o.hooks.presenceChanged?.(p);
        return;
      }
      case 'pull':
      case 'chunk':
      case 'pull-error':
        return this.chunks.handle(c, f);
      case 'error':
        this.o.log(`[team] ${this.links.label(c)} reported: ${f.code} ${f.message}`);
        return;
      default:
        this.links.close(c, CloseCodes.BAD_FRAME, `unexpected ${f.t} after authentication`);
    }
  }

  private ownPresence(bump: boolean): Presence {
    // Time-based, so a restarted node's presence is newer than what peers remember of it.
    if (bump || this.pseq === 0) this.pseq = Math.max(this.pseq + 1, Date.now());
    return { ...this.o.hooks.presence(), agent: this.o.id, pseq: this.pseq, at: Date.now() };
  }
}
