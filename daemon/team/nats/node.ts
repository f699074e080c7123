/**
 * The team over NATS JetStream instead of the built-in relay: decisions in a KV bucket
 * (decisions.ts), presence in another (presence.ts), layer archives in the Object Store
 * (layers.ts). It offers the service what TeamNode does (transport.ts), so everything above the
 * transport works the same. Trust is the built-in transport's: each value is signed by the agent
 * that made it and carries the team MAC, and both are checked on arrival (seal.ts).
 */
import { NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { KV, Kvm } from '@nats-io/kv';
import { ObjectStore, Objm } from '@nats-io/obj';
import { Presence, TeamEvent } from '../../../protocol';
import { Identity, KeyRing } from '../identity';
import { DEFAULT_LIMITS, NodeLimits } from '../limits';
import { PeerInfo } from '../links';
import { NodeHooks } from '../node';
import { RefusalLog } from '../refusals';
import { TeamState } from '../state';
import { LayerStore, TeamTransport } from '../transport';
import { Credentials, connectError, connectNats, readCredentials } from './connect';
import { Decisions, retried } from './decisions';
import { LayerObjects } from './layers';
import { Buckets, bucketsOf, serversOf } from './names';
import { PresenceBoard } from './presence';
import { Throttle } from '../throttle';

const ANNOUNCE_MS = 200;
/** Versions kept per decision key: what team history and revert can reach back to. */
const KEY_HISTORY = 64;

export interface NatsNodeOptions {
  identity: Identity;
  team: string;
  /** The key derived from the team secret: the team MAC on every value. */
  key: Buffer;
  state: TeamState;
  hooks: NodeHooks;
  log: (msg: string) => void;
  /** nats://, tls://, nats+ws://, nats+wss:// addresses. */
  urls: string[];
  /** A 0600 file of NATS credentials, or null (a server without auth). */
  credentials: string | null;
  /** The JetStream domain of the team's buckets (the team file's jetstreamDomain), or undefined. */
  domain?: string;
  /** Where the last revision read (and persisted with the state) is kept. */
  cursorFile: string;
  /** Joining: a refusal is the join's error. Rejoining at start: keep trying in the background. */
  joining: boolean;
  /** The team layers and their digests in the team file (only those are published). */
  teamDigests: () => Record<string, string>;
  limits?: Partial<NodeLimits>;
}

export class NatsNode implements TeamTransport {
  readonly keys = new KeyRing();
  readonly refusals: RefusalLog;
  readonly limits: NodeLimits;
  readonly port = 0;
  readonly buckets: Buckets;
  private nc: NatsConnection | null = null;
  private decisions: Decisions | null = null;
  private board: PresenceBoard | null = null;
  private objects: LayerObjects | null = null;
  private creds: Credentials | null = null;
  private connected = false;
  private since = Date.now();
  private stopped = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private readonly announcer = new Throttle(ANNOUNCE_MS, () => this.storePresence());
  private pseq = 0;
  private readonly empty = new Map<string, Presence>();

  constructor(private readonly o: NatsNodeOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...(o.limits ?? {}) };
    this.refusals = new RefusalLog(o.log);
    this.buckets = bucketsOf(o.team);
  }

  get id(): string {
    return this.o.identity.id;
  }

  get presences(): ReadonlyMap<string, Presence> {
    return this.board?.byAgent ?? this.empty;
  }

  get layerStore(): LayerStore | undefined {
    return this.objects ?? undefined;
  }

  heardAt(agent: string): number | undefined {
    return this.board?.heardAt(agent);
  }

  async start(): Promise<void> {
    this.creds = this.o.credentials ? readCredentials(this.o.credentials) : null;
    if (this.o.joining) return this.open();
    await this.open().catch((e) => this.retryLater(e as Error, 1000));
  }

  private retryLater(e: Error, ms: number): void {
    if (this.stopped) return;
    this.o.log(`[team] ${e.message}; trying again in ${Math.round(ms / 1000)} s`);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.open().catch((err) => this.retryLater(err as Error, Math.min(60_000, ms * 2)));
    }, ms);
    this.retry.unref();
  }

  /** Connect, open (or make) the team's buckets, then catch up and announce. */
  private async open(): Promise<void> {
    const srv = serversOf(this.o.urls);
    const nc = await connectNats(srv, this.creds, `strata ${this.o.team} ${this.id}`);
    if (this.stopped) return void (await nc.close());
    try {
      await this.openBuckets(nc);
    } catch (e) {
      await nc.close().catch(() => {});
      // No JetStream for this account here (a leaf node without the hub's domain, say), or no
      // answer after the retries: explained, naming the servers.
      throw /jetstream|timeout/i.test(String((e as Error)?.message)) ? connectError(srv.servers, this.creds, e) : e;
    }
    this.nc = nc;
    this.connected = true;
    this.since = Date.now();
    void this.watchStatus(nc);
    await this.decisions!.start();
    await this.board!.start();
    this.o.log(
      `[team] connected to NATS at ${nc.getServer()} (buckets ${this.buckets.decisions}, ${this.buckets.presence}, ${this.buckets.layers})`,
    );
    let beats = 0;
    this.heartbeat = setInterval(() => {
      this.announce(true);
      if (++beats % 3 === 0) void this.rewatch(false);
    }, this.limits.heartbeatMs);
    this.heartbeat.unref();
    this.announce();
    void this.decisions!.republishOwn().catch((e) => this.o.log(`[team] ${(e as Error).message}`));
    this.o.hooks.peersChanged?.();
  }

  private async openBuckets(nc: NatsConnection): Promise<void> {
    const { team, key, log } = this.o;
    // A cluster gets three replicas of each bucket: one server lost loses nothing acknowledged.
    const servers = new Set(nc.info?.connect_urls ?? []).size;
    const replicas = servers >= 3 ? 3 : 1;
    const js = jetstream(nc, { domain: this.o.domain });
    const kvm = new Kvm(js);
    // A bucket that exists is used as it is (its settings are the first agent's); one that does not is made.
    // Each request is retried on a timeout: a cluster that just lost a node answers late for a while.
    const openKv = async (name: string, opts: { history: number; ttl?: number }): Promise<KV> => {
      try {
        const kv = await retried(() => kvm.open(name));
        await retried(() => kv.status());
        return kv;
      } catch (e) {
        if (!/not found/i.test((e as Error).message)) throw e;
        log(`[team] making the bucket ${name} (${replicas} replica${replicas > 1 ? 's' : ''})`);
        return retried(() => kvm.create(name, { ...opts, replicas }));
      }
    };
    const decisionsKv = await openKv(this.buckets.decisions, { history: KEY_HISTORY });
    const presenceKv = await openKv(this.buckets.presence, { history: 1, ttl: 3 * this.limits.heartbeatMs });
    const objm = new Objm(js);
    let os: ObjectStore;
    try {
      os = await retried(() => objm.open(this.buckets.layers));
    } catch (e) {
      if (!/not found/i.test((e as Error).message)) throw e;
      os = await retried(() => objm.create(this.buckets.layers, { replicas }));
    }
    const common = { team, key, agent: this.id, keys: this.keys, refusals: this.refusals, log };
    this.decisions = new Decisions({
      ...common,
      kv: decisionsKv,
      bucket: this.buckets.decisions,
      state: this.o.state,
      cursorFile: this.o.cursorFile,
      changed: () => this.o.hooks.stateChanged('event'),
    });
    this.board = new PresenceBoard({
      ...common,
      kv: presenceKv,
      bucket: this.buckets.presence,
      maxSkewMs: this.limits.maxSkewMs,
      max: this.limits.maxOrigins,
      changed: (p) => {
        // An agent's own word on its own decisions: it made every seq up to this one.
        const own = p.applied[p.agent];
        if (own) this.o.state.markSynced({ [p.agent]: own });
        this.o.hooks.presenceChanged?.(p);
      },
    });
    this.objects = new LayerObjects({
      os,
      bucket: this.buckets.layers,
      label: () => this.nc?.getServer() ?? this.o.urls.join(', '),
      log,
      readChunk: this.o.hooks.readChunk,
      maxLayerBytes: this.limits.maxLayerBytes,
      recheckMs: 6 * this.limits.heartbeatMs,
    });
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') {
        this.connected = s.type === 'reconnect';
        this.since = Date.now();
        this.o.log(`[team] NATS ${s.type === 'disconnect' ? 'connection lost' : `reconnected to ${nc.getServer()}`}`);
        if (this.connected) {
          this.announce();
          void this.rewatch(true);
        }
        this.o.hooks.peersChanged?.();
      }
    }
  }

  private async rewatch(reconnected: boolean): Promise<void> {
    try {
      await this.decisions?.check(reconnected);
      if (reconnected) await this.board?.start();
    } catch (e) {
      this.o.log(`[team] watching the team's buckets again failed: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [this.heartbeat, this.retry]) if (t) clearTimeout(t);
    this.announcer.stop();
    this.decisions?.stop();
    this.board?.stop();
    await this.nc?.drain().catch(() => {});
    this.nc = null;
  }

  resync(): void {
    this.decisions?.resync().catch((e) => this.o.log(`[team] reading the decisions bucket again failed: ${(e as Error).message}`));
  }

  publish(ev: TeamEvent): void {
    void this.decisions?.publish(ev);
  }

  async delivered(ev: TeamEvent, timeoutMs: number): Promise<void> {
    if (!this.decisions) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([this.decisions.publish(ev), late]);
    clearTimeout(timer);
  }

  mark(): number {
    return this.decisions?.mark() ?? 0;
  }

  saved(mark: number): void {
    this.decisions?.saved(mark);
  }

  /** Store this agent's presence: at once after a change (at most one per ANNOUNCE_MS), and every heartbeat. */
  announce(refresh = false): void {
    if (this.board) this.announcer.run(refresh);
  }

  private storePresence(): void {
    if (!this.board) return;
    this.pseq = Math.max(this.pseq + 1, Date.now());
    const fields = this.o.hooks.presence();
    this.board.put(this.o.identity.signPresence(this.o.team, { ...fields, agent: this.id, pseq: this.pseq, at: Date.now() }));
    // The first agent with a team layer at the team file's digest makes it pullable for everyone.
    const want = this.o.teamDigests();
    for (const [layer, digest] of Object.entries(fields.has)) if (want[layer] === digest) void this.objects?.publish(layer, digest);
  }

  peers(): PeerInfo[] {
    const url = this.nc?.getServer() ?? this.o.urls[0];
    return [
      {
        agent: 'nats',
        direction: 'out',
        url: url.includes('://') ? url : `nats://${url}`,
        state: this.connected ? 'connected' : 'connecting',
        since: this.since,
      },
    ];
  }

  connectedAgents(): string[] {
    return [];
  }

  reachable(): boolean {
    return this.connected;
  }

  pullFrom(
    _agent: string,
    layer: string,
    digest: string,
    _offset: number,
    write: (offset: number, data: Buffer, total: number) => Promise<void>,
  ): Promise<void> {
    if (!this.objects) return Promise.reject(new Error('not connected to NATS'));
    return this.objects.fetch(layer, digest, write);
  }
}
