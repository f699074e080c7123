/**
 * A hand-driven team peer for the adversarial suites: it speaks the real wire protocol (it knows
 * the team secret and has a key pair of its own), so a test can misbehave on purpose, and sign
 * whatever it likes with whatever key it holds.
 */
import * as crypto from 'crypto';
import { WebSocket } from 'ws';
import { clientProof, newNonce } from '../../daemon/team/auth';
import { Identity, handshakeBytes } from '../../daemon/team/identity';
import { Frame, Hlc, Presence, RegisterWrite, TEAM_PROTOCOL_VERSION, TeamEvent } from '../../protocol';
import { eventually } from './team-helpers';

export class RawPeer {
  ws: WebSocket;
  frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  opened: Promise<void>;
  nonce = newNonce();
  readonly identity: Identity;

  constructor(url: string, opts: { identity?: Identity; localAddress?: string } = {}) {
    this.identity = opts.identity ?? Identity.generate();
    this.ws = new WebSocket(url, { perMessageDeflate: false, localAddress: opts.localAddress });
    this.ws.on('message', (d) => {
      try {
        this.frames.push(JSON.parse(String(d)) as Frame);
      } catch {
        /* not ours to judge */
      }
    });
    this.ws.on('close', (code, reason) => (this.closed = { code, reason: String(reason) }));
    this.ws.on('error', () => {});
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', () => res());
      this.ws.once('error', rej);
      this.ws.once('unexpected-response', (_req, r) => rej(new Error(`HTTP ${r.statusCode}`)));
    });
    this.opened.catch(() => {});
  }

  get agent(): string {
    return this.identity.id;
  }

  send(f: unknown): void {
    this.ws.send(typeof f === 'string' ? f : JSON.stringify(f));
  }

  next<T extends Frame['t']>(t: T, ms = 5000): Promise<Extract<Frame, { t: T }>> {
    return eventually(
      `a ${t} frame`,
      () => {
        const i = this.frames.findIndex((f) => f.t === t);
        if (i < 0) {
          if (this.closed) throw new Error(`closed ${this.closed.code} ${this.closed.reason}`);
          return null;
        }
        return this.frames.splice(i, 1)[0] as Extract<Frame, { t: T }>;
      },
      ms,
    );
  }

  /** hello → challenge → auth (with `key`, or a wrong proof) → welcome. */
  async handshake(team: string, key: Buffer | null): Promise<void> {
    await this.opened;
    const me = this.identity;
    this.send({ t: 'hello', v: TEAM_PROTOCOL_VERSION, team, agent: me.id, nonce: this.nonce, key: me.key });
    const ch = await this.next('challenge');
    const proof = key ? clientProof(key, team, ch.nonce, this.nonce, me.id, ch.agent) : 'ab'.repeat(32);
    const sig = me.sign(handshakeBytes('client', team, [ch.nonce, this.nonce, me.id, ch.agent]));
    this.send({ t: 'auth', proof, sig });
    if (key) await this.next('welcome');
  }

  whenClosed(): Promise<{ code: number; reason: string }> {
    return eventually('the connection to close', () => this.closed, 10000);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** An event by `by` (signed with its key) claiming to come from `origin` (its own id unless forging). */
export function signedEvent(
  team: string,
  by: Identity,
  seq: number,
  writes: RegisterWrite[],
  opts: { origin?: string; wall?: number; logical?: number } = {},
): TeamEvent {
  const origin = opts.origin ?? by.id;
  const tag: Hlc = { wall: opts.wall ?? Date.now(), logical: opts.logical ?? 0, agent: origin };
  const prev = writes.map((w) => ({ key: w.key, value: 'active' in w.value ? { active: false } : { layer: null } }));
  return by.signEvent(team, { origin, seq, tag, writes, user: 'mallory', host: 'test', prev });
}

/** A presence signed by `by`, for `agent` (its own id unless forging). */
export function signedPresence(team: string, by: Identity, fields: Partial<Omit<Presence, 'key' | 'sig'>> = {}): Presence {
  const now = Date.now();
  return by.signPresence(team, {
    agent: by.id,
    pseq: now,
    user: 'mallory',
    host: 'test',
    active: [],
    held: [],
    applied: {},
    busy: [],
    has: {},
    at: now,
    ...fields,
  });
}

/** A chunk of `data` (the whole archive) at `offset`, signed by `by`. */
export function signedChunk(
  team: string,
  by: Identity,
  f: { from: string; layer: string; digest: string; offset: number },
  data: Buffer,
  chunkBytes: number,
  total = data.length,
  damage = false,
): Frame {
  const slice = data.subarray(f.offset, f.offset + chunkBytes);
  const sha256 = crypto.createHash('sha256').update(slice).digest('hex');
  let sent = slice;
  if (damage) {
    sent = Buffer.from(slice);
    sent[10] ^= 0xff; // damaged on the way: the hash no longer matches
  }
  return by.signChunk(team, {
    t: 'chunk',
    to: f.from,
    from: by.id,
    layer: f.layer,
    digest: f.digest,
    offset: f.offset,
    total,
    sha256,
    data: sent.toString('base64'),
  });
}
