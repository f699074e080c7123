/**
 * Layer archives in chunks between teammates, routed hop by hop along the link each agent's
 * presence arrived on: serving chunks (signed by the server), fetching them (each checked against
 * its signature and hash, a bad one asked for again; the size the source declares is capped), and
 * passing pull frames on toward their addressee.
 */
import * as crypto from 'crypto';
import { WebSocket } from 'ws';
import { CHUNK_BYTES, Frame } from '../../protocol/team';
import { Conn, Links } from './links';
import { Identity, KeyRing } from './identity';

type PullFrame = Extract<Frame, { t: 'pull' | 'chunk' | 'pull-error' }>;

/** Serve a piece of a layer archive; null when this node cannot. */
export type ReadChunk = (layer: string, digest: string, offset: number, length: number) => Promise<{ total: number; data: Buffer } | null>;

interface PendingPull {
  layer: string;
  digest: string;
  source: string;
  conn: Conn;
  onChunk: (f: Extract<Frame, { t: 'chunk' }>) => void;
  onError: (message: string) => void;
}

export class ChunkPulls {
  private pending = new Set<PendingPull>();

  constructor(
    private readonly o: {
      identity: Identity;
      team: () => string;
      keys: KeyRing;
      links: Links;
      /** Next hop toward each agent (kept by node.ts from presences). */
      routes: ReadonlyMap<string, Conn>;
      readChunk?: ReadChunk;
      log: (msg: string) => void;
      /** The largest archive a source may declare. */
      maxLayerBytes: number;
    },
  ) {}

  private get id(): string {
    return this.o.identity.id;
  }

  /** A pull, chunk or pull-error frame arrived on `c`. */
  handle(c: Conn, f: PullFrame): void {
    const { links } = this.o;
    const id = this.id;
    if (f.to !== id) {
      // Not for us: pass it one hop on toward its addressee, or say there is no way.
      const next = this.o.routes.get(f.to);
      if (next && next !== c && next.state === 'connected') links.send(next, f);
      else if (f.t === 'pull') links.send(c, { t: 'pull-error', to: f.from, from: id, layer: f.layer, message: `no route to ${f.to}` });
      return;
    }
    if (f.t === 'pull') {
      void this.serve(c, f);
      return;
    }
    if (f.t === 'chunk') {
      // Only the source can sign its chunks: a chunk from anyone else is not part of the pull.
      const bad = this.o.keys.verifyChunk(this.o.team(), f);
      if (bad) return this.o.log(`[team] ignored a chunk of ${f.layer} said to be from ${f.from}: it carries ${bad}`);
    }
    for (const p of this.pending) {
      if (p.source === f.from && p.layer === f.layer) {
        if (f.t === 'chunk') p.onChunk(f);
        else p.onError(f.message);
      }
    }
  }

  /** Fail the pulls that went through a link that closed. */
  linkClosed(c: Conn): void {
    for (const p of [...this.pending]) if (p.conn === c) p.onError(`the link toward ${p.source} went away`);
  }

  /** Agents a pull can reach now: directly connected, or through the link their presence came on. */
  reachable(agent: string): boolean {
    const c = this.o.routes.get(agent);
    return !!c && c.state === 'connected' && c.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Fetch chunks of a layer archive from `agent`, starting at `offset`. Each chunk is checked
   * against its hash; a bad one is asked for again (up to `retries` times). Resolves when `total`
   * bytes have been handed to `write`.
   */
  fetch(
    agent: string,
    layer: string,
    digest: string,
    offset: number,
    write: (offset: number, data: Buffer, total: number) => Promise<void>,
    opts: { retries?: number; chunkTimeoutMs?: number } = {},
  ): Promise<void> {
    const conn = this.o.routes.get(agent);
    if (!conn || !this.reachable(agent)) return Promise.reject(new Error(`no route to ${agent}`));
    const retries = opts.retries ?? 3;
    return new Promise<void>((resolve, reject) => {
      let failures = 0;
      let timer: NodeJS.Timeout | undefined;
      let pos = offset;
      let declared: number | null = null;
      const ask = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => done(new Error(`${agent} did not send ${layer} chunk at ${pos} in time`)), opts.chunkTimeoutMs ?? 15000);
        this.o.links.send(conn, { t: 'pull', to: agent, from: this.id, layer, digest, offset: pos });
      };
      const done = (e?: Error) => {
        if (timer) clearTimeout(timer);
        this.pending.delete(pending);
        if (e) reject(e);
        else resolve();
      };
      const pending: PendingPull = {
        layer,
        digest,
        conn,
        source: agent,
        onError: (m) => done(new Error(m)),
        onChunk: (f) => {
          if (f.offset !== pos || f.digest !== digest) return;
          if (f.total > this.o.maxLayerBytes) {
            return done(new Error(`${agent} declares ${layer} as ${f.total} bytes, more than the ${this.o.maxLayerBytes} a pull accepts`));
          }
          if (declared !== null && f.total !== declared) {
            return done(new Error(`${agent} changed the size of ${layer} from ${declared} to ${f.total} bytes during the pull`));
          }
          declared = f.total;
          const data = Buffer.from(f.data, 'base64');
          if (pos + data.length > f.total) return done(new Error(`${agent} sent more of ${layer} than the ${f.total} bytes it declared`));
          const sum = crypto.createHash('sha256').update(data).digest('hex');
          if (sum !== f.sha256 || (data.length === 0 && pos < f.total)) {
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
      this.pending.add(pending);
      ask();
    });
  }

  private async serve(c: Conn, f: Extract<Frame, { t: 'pull' }>): Promise<void> {
    const { links } = this.o;
    const id = this.id;
    const r = this.o.readChunk ? await this.o.readChunk(f.layer, f.digest, f.offset, CHUNK_BYTES).catch(() => null) : null;
    if (!r) {
      links.send(c, { t: 'pull-error', to: f.from, from: id, layer: f.layer, message: `${id} does not have ${f.layer} at ${f.digest}` });
      return;
    }
    const sha256 = crypto.createHash('sha256').update(r.data).digest('hex');
    const chunk = { t: 'chunk' as const, to: f.from, from: id, layer: f.layer, digest: f.digest, offset: f.offset, total: r.total, sha256 };
    links.send(c, this.o.identity.signChunk(this.o.team(), { ...chunk, data: r.data.toString('base64') }));
  }
}
