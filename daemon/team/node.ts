/**
 * One member of the team network: an agent, or a standalone relay. Over the links (links.ts),
 * once a peer has passed the handshake (handshake.ts), it keeps replicas in step: on every
 * (re)connect each side says what it has seen and gets the events it lacks and those holding the
 * other's registers; after that, events and presence are flooded to every peer that has not seen
 * them. Every event and presence is checked before it is used or passed on: its signature by its
 * origin (identity.ts), then what it claims (state.ts, and here for presence); a refused frame is
 * dropped with a logged reason. Layer archives travel in chunks (chunks.ts).
 */
import { CloseCodes, Frame, Presence, TeamEvent, WIRE_ORIGINS, eventId } from '../../protocol/team';
import { TeamState } from './state';
import { Handshake } from './handshake';
import { ChunkPulls, ReadChunk } from './chunks';
import { Conn, Links, ListenOptions, PeerInfo } from './links';
import { NodeLimits } from './limits';
import { Identity, KeyRing } from './identity';
import { Presences } from './presences';
import { RefusalLog } from './refusals';
import { Throttle } from './throttle';

const ANNOUNCE_MS = 200;

export interface NodeHooks {
  /** Registers changed (remote events): persist and apply the team's active set locally. */
  stateChanged(reason: string): void;
  /** This node's own presence fields (without agent, pseq, at and the signature). */
  presence(): Omit<Presence, 'agent' | 'pseq' | 'at' | 'key' | 'sig'>;
  /** A peer's presence arrived or changed. */
  presenceChanged?(p: Presence): void;
  /** Serve a piece of a layer archive for a pull; null when this node cannot. */
  readChunk?: ReadChunk;
  /** An authenticated peer connected or went away. */
  peersChanged?(): void;
}

export interface NodeOptions {
  identity: Identity;
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
  private readonly table: Presences;
  readonly keys: KeyRing;
  readonly refusals: RefusalLog;
  private readonly links: Links;
  private readonly handshake: Handshake;
  private readonly chunks: ChunkPulls;
  private heartbeat: NodeJS.Timeout | null = null;
  private pseq = 0;
  /** Each held presence's frame, encoded once: forwarded to everyone, and sent to each newcomer. */
  private readonly presenceFrames = new WeakMap<Presence, Buffer>();
  private readonly announcer = new Throttle(ANNOUNCE_MS, () => {
    const p = this.ownPresence(true);
    if (p) this.links.forward(null, { t: 'presence', presence: p });
  });

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
    this.keys = new KeyRing(4 * this.links.limits.maxOrigins);
    this.refusals = new RefusalLog(o.log);
    this.table = new Presences(this.links.limits.maxOrigins);
    this.handshake = new Handshake({
      identity: o.identity,
      team: o.team,
      key: o.key,
      keys: this.keys,
      links: this.links,
      log: o.log,
      established: (c) => this.established(c),
    });
    this.chunks = new ChunkPulls({
      identity: o.identity,
      team: () => this.team ?? '',
      keys: this.keys,
      links: this.links,
      routes: this.table.routes,
      readChunk: o.hooks.readChunk,
      log: o.log,
      maxLayerBytes: this.links.limits.maxLayerBytes,
    });
  }

  get id(): string {
    return this.o.identity.id;
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

  /** The teammates' latest presences, least recently heard first. */
  get presences(): ReadonlyMap<string, Presence> {
    return this.table.byAgent;
  }

  /** When a presence of `agent` was last heard here (local clock), or undefined. */
  heardAt(agent: string): number | undefined {
    return this.table.heardAt(agent);
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
    this.announcer.stop();
    await this.links.stop();
  }

  /** Ask every peer again for what this node lacks, winners included (as on connect, with the same credit). */
  resync(): void {
    this.links.askCatchUp({ t: 'have', seen: this.o.state.seenVector(WIRE_ORIGINS) });
  }

  /** Send a decision made here (already recorded in the state) to every peer. */
  publish(ev: TeamEvent): void {
    this.links.forward(null, { t: 'event', event: ev });
  }

  /**
   * Tell everyone what this node runs now (after applying a change). At most one presence per
   * ANNOUNCE_MS: a burst of changes (a flood of events) is one announcement, sent when it ends.
   */
  announce(): void {
    this.announcer.run();
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
    // Catch-up: each side says what it has seen; the other answers with what it lacks (one frame
    // each, so they are checked and forwarded like live ones), then says it is done (`synced`).
    this.links.send(c, { t: 'have', seen: this.o.state.seenVector(WIRE_ORIGINS) });
    const own = this.ownPresence(false);
    if (own) this.links.send(c, { t: 'presence', presence: own });
    for (const p of this.table.byAgent.values()) this.links.send(c, this.presenceFrame(p));
    this.o.hooks.peersChanged?.();
  }

  private closed(c: Conn, wasConnected: boolean): void {
    this.chunks.linkClosed(c);
    this.table.linkClosed(c);
    if (wasConnected) this.o.hooks.peersChanged?.();
  }

  private dispatch(c: Conn, f: Frame): void {
    const state = this.o.state;
    switch (f.t) {
      case 'have': {
        for (const ev of state.syncFor(f.seen)) this.links.send(c, { t: 'event', event: ev });
        this.links.send(c, { t: 'synced', seen: state.seenVector(WIRE_ORIGINS) });
        return;
      }
      case 'synced':
        state.markSynced(f.seen);
        return;
      case 'event':
        return this.onEvent(c, f);
      case 'presence':
        return this.onPresence(c, f);
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

  private refuse(c: Conn, what: string, why: string): void {
    this.refusals.refuse(`${what} from ${this.links.label(c)}`, why);
  }

  private onEvent(c: Conn, f: Extract<Frame, { t: 'event' }>): void {
    const ev = f.event;
    const state = this.o.state;
    if (state.knows(ev)) return; // a copy of one held: nothing new, and checked before
    const bad = this.keys.verifyEvent(this.team!, ev);
    if (bad) return this.refuse(c, `event ${eventId(ev)}`, `it carries ${bad}`);
    const r = state.receive(ev);
    if (r.refused) return this.refuse(c, `event ${eventId(ev)}`, r.refused);
    if (!r.fresh && !r.changed && !r.recorded) return;
    this.links.forward(c, f);
    // Persist and acknowledge every new decision, even one that changes no value.
    this.o.hooks.stateChanged('event');
  }

  private onPresence(c: Conn, f: Extract<Frame, { t: 'presence' }>): void {
    const p = f.presence;
    if (p.agent === this.id || !this.table.isNewer(p)) return;
    const now = Date.now();
    const ahead = Math.max(p.at, p.pseq) - now;
    if (ahead > this.limits.maxSkewMs) {
      return this.refuse(c, `presence of ${p.agent}`, `its clock is ${Math.round(ahead / 1000)} s ahead of ours`);
    }
    const bad = this.keys.verifyPresence(this.team!, p);
    if (bad) return this.refuse(c, `presence of ${p.agent}`, `it carries ${bad}`);
    this.table.keep(p, c, now);
    // A presence says what its agent made, not what reached us: it closes no gap in our seen set
    // (a gap closed on its word is never asked for again: the next `have` says we hold it).
    this.links.forward(c, this.presenceFrame(p));
    this.o.hooks.presenceChanged?.(p);
  }

  private presenceFrame(p: Presence): Buffer {
    let b = this.presenceFrames.get(p);
    if (!b) {
      // Its own memory: a small Buffer.from is a slice of a shared 8 KB pool, which it would keep.
      const text = JSON.stringify({ t: 'presence', presence: p });
      b = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
      b.write(text);
      this.presenceFrames.set(p, b);
    }
    return b;
  }

  private ownPresence(bump: boolean): Presence | null {
    const team = this.team;
    if (team === null) return null; // a relay before its first member: nobody to tell
    // Time-based, so a restarted node's presence is newer than what peers remember of it.
    if (bump || this.pseq === 0) this.pseq = Math.max(this.pseq + 1, Date.now());
    return this.o.identity.signPresence(team, { ...this.o.hooks.presence(), agent: this.id, pseq: this.pseq, at: Date.now() });
  }
}
