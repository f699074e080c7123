/**
 * Pieces of the team relay benchmark (bench/team.ts):
 *
 * - LightPeer: a minimal team client that performs the real handshake (hello → challenge → auth →
 *   welcome) and then only counts what arrives, so fan-out and memory figures measure the relay,
 *   not the cost of full TeamNodes on the client side.
 * - relayChild: the body of the relay process (a TeamNode with listen, as `strata relay` runs it),
 *   driven over IPC so its RSS and its count of frames sent (`deliveries`) are its own.
 */
import * as os from 'os';
import * as v8 from 'v8';
import { WebSocket, RawData } from 'ws';
import { TEAM_PROTOCOL_VERSION, MAX_FRAME, Presence, TeamEvent } from '../protocol/team';
import { clientProof, newNonce } from '../daemon/team/auth';
import { Identity, handshakeBytes } from '../daemon/team/identity';
import { TeamNode } from '../daemon/team/node';
import { NodeLimits } from '../daemon/team/links';
import { TeamState } from '../daemon/team/state';
import { HlcClock } from '../daemon/team/hlc';

const EVENT_PREFIX = '{"t":"event"';

export class LightPeer {
  readonly ws: WebSocket;
  /** Event frames received after the handshake. */
  events = 0;
  /** All frames received after the handshake. */
  frames = 0;
  /** performance.now() of the last event frame. */
  lastEventAt = 0;
  readonly ready: Promise<void>;
  private readonly nonce = newNonce();
  private authed = false;
  onEvent: (() => void) | null = null;
  /** Its own key pair: the relay checks what it signs. */
  readonly identity = Identity.generate();

  constructor(
    url: string,
    readonly team: string,
    key: Buffer,
    /** For messages only; the id is the key's. */
    readonly label: string,
    opts: { presence?: boolean } = {},
  ) {
    const me = this.identity;
    const id = me.id;
    this.ws = new WebSocket(url, { maxPayload: MAX_FRAME, perMessageDeflate: false, handshakeTimeout: 10000 });
    this.ready = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${label}: handshake took more than 20 s`)), 20000);
      this.ws.on('error', (e) => reject(e));
      this.ws.on('close', (code) => reject(new Error(`${label}: closed during the handshake (${code})`)));
      this.ws.on('open', () =>
        this.ws.send(JSON.stringify({ t: 'hello', v: TEAM_PROTOCOL_VERSION, team, agent: id, nonce: this.nonce, key: me.key })),
      );
      this.ws.on('message', (data: RawData) => {
        if (this.authed) {
          this.frames++;
          const s = data.toString();
          if (s.startsWith(EVENT_PREFIX)) {
            this.events++;
            this.lastEventAt = performance.now();
            this.onEvent?.();
          }
          return;
        }
        let f: { t: string; nonce?: string; agent?: string; message?: string };
        try {
          f = JSON.parse(data.toString());
        } catch {
          return reject(new Error(`${label}: the relay sent a frame that is not JSON during the handshake`));
        }
        if (f.t === 'challenge' && typeof f.nonce === 'string' && typeof f.agent === 'string') {
          const proof = clientProof(key, team, f.nonce, this.nonce, id, f.agent);
          const sig = me.sign(handshakeBytes('client', team, [f.nonce, this.nonce, id, f.agent]));
          this.ws.send(JSON.stringify({ t: 'auth', proof, sig }));
        } else if (f.t === 'welcome') {
          this.authed = true;
          clearTimeout(t);
          if (opts.presence) this.ws.send(JSON.stringify({ t: 'presence', presence: lightPresence(me, team) }));
          resolve();
        } else if (f.t === 'error') {
          reject(new Error(`${label}: relay said ${f.message}`));
        }
      });
    });
    this.ready.catch(() => {});
  }

  send(text: string): void {
    this.ws.send(text);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** What an agent announces on connect (the relay stores one per agent and forwards it). */
export function lightPresence(me: Identity, team: string): Presence {
  return me.signPresence(team, {
    agent: me.id,
    pseq: 1,
    user: 'bench',
    host: os.hostname(),
    active: [],
    held: [],
    applied: {},
    busy: [],
    has: {},
    at: Date.now(),
  });
}

/** A valid event frame, signed: origin's decision number `seq` toggling layer:bench. */
export function eventFrame(origin: Identity, team: string, seq: number): string {
  const ev: TeamEvent = origin.signEvent(team, {
    origin: origin.id,
    seq,
    tag: { wall: Date.now(), logical: seq, agent: origin.id },
    writes: [{ key: 'layer:bench', value: { active: seq % 2 === 1 } }],
    user: 'bench',
    host: 'bench',
    prev: [{ key: 'layer:bench', value: { active: seq % 2 === 0 } }],
  });
  return JSON.stringify({ t: 'event', event: ev });
}

// ---- the relay process ------------------------------------------------------------------------------

export type RelayRequest =
  { cmd: 'start'; team: string; key: string; limits: Partial<NodeLimits> } | { cmd: 'stats'; gc?: boolean } | { cmd: 'stop' };

export interface RelayStats {
  port: number;
  deliveries: number;
  rss: number;
  heapUsed: number;
  /** heapTotal, external and arrayBuffers of process.memoryUsage(). */
  heapTotal: number;
  external: number;
  /** What V8's young generation holds (it grows under a burst of allocation and stays grown). */
  newSpace: number;
  /** CPU time of the relay process so far (user + system, µs). */
  cpuUs: number;
  connected: number;
}

/**
 * Count every frame sent in this process. Only the relay sends frames in the child, so this is
 * what it delivered to peers; the relay itself keeps no counter.
 */
function countSends(): () => number {
  let sent = 0;
  const send = WebSocket.prototype.send as (this: WebSocket, ...args: unknown[]) => void;
  WebSocket.prototype.send = function (this: WebSocket, ...args: unknown[]) {
    sent++;
    return send.apply(this, args);
  } as WebSocket['send'];
  return () => sent;
}

/** Runs in the child: answers each request with one message. */
export function relayChild(): void {
  let node: TeamNode | null = null;
  const deliveries = countSends();
  const reply = (m: unknown) => process.send!(m);
  const stats = (): RelayStats => {
    const m = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      port: node?.port ?? 0,
      deliveries: deliveries(),
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      newSpace: v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0,
      cpuUs: cpu.user + cpu.system,
      connected: node?.connectedAgents().length ?? 0,
    };
  };
  // The parent going away ends the relay too: the benchmark never leaves a process behind.
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (req: RelayRequest) => {
    try {
      if (req.cmd === 'start') {
        const identity = Identity.generate();
        const id = identity.id;
        const state = new TeamState(id, new HlcClock(id), { maxOrigins: req.limits.maxOrigins });
        const key = Buffer.from(req.key, 'hex');
        node = new TeamNode({
          identity,
          team: req.team,
          key,
          state,
          log: () => {},
          listen: { host: '127.0.0.1', port: 0 },
          limits: req.limits,
          hooks: {
            stateChanged: () => {},
            presence: () => ({
              user: 'relay',
              host: os.hostname(),
              active: null,
              held: [],
              applied: state.seenVector(),
              busy: [],
              has: {},
            }),
          },
        });
        await node.start();
        reply(stats());
      } else if (req.cmd === 'stats') {
        if (req.gc && typeof global.gc === 'function') {
          global.gc();
          await new Promise((r) => setTimeout(r, 50));
          global.gc();
        }
        reply(stats());
      } else if (req.cmd === 'stop') {
        await node?.stop();
        reply(stats());
        process.exit(0);
      }
    } catch (e) {
      reply({ error: (e as Error).message });
    }
  });
}
