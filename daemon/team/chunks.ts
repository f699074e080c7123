/**
 * Layer archives in chunks between teammates, routed hop by hop along the link each agent's
 * presence arrived on: serving chunks, fetching them (each checked against its hash, a bad one
 * asked for again), and passing pull frames on toward their addressee.
 */
import * as crypto from 'crypto';
import { WebSocket } from 'ws';
import { CHUNK_BYTES, Frame } from '../../protocol/team';
import { Conn, Links } from './links';

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
      id: string;
      links: Links;
      /** Next hop toward each agent (kept by node.ts from presences). */
      routes: ReadonlyMap<string, Conn>;
      readChunk?: ReadChunk;
      log: (msg: string) => void;
    },
  ) {}

  /** A pull, chunk or pull-error frame arrived on `c`. */
  handle(c: Conn, f: PullFrame): void {
    const { links, id } = this.o;
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
      const ask = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => done(new Error(`${agent} did not send ${layer} chunk at ${pos} in time`)), opts.chunkTimeoutMs ?? 15000);
        this.o.links.send(conn, { t: 'pull', to: agent, from: this.o.id, layer, digest, offset: pos });
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
          const data = Buffer.from(f.data, 'base64');
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
    const { links, id } = this.o;
    const r = this.o.readChunk ? await this.o.readChunk(f.layer, f.digest, f.offset, CHUNK_BYTES).catch(() => null) : null;
    if (!r) {
      links.send(c, { t: 'pull-error', to: f.from, from: id, layer: f.layer, message: `${id} does not have ${f.layer} at ${f.digest}` });
      return;
    }
    const sha256 = crypto.createHash('sha256').update(r.data).digest('hex');
    links.send(c, {
      t: 'chunk',
      to: f.from,
      from: id,
      layer: f.layer,
      digest: f.digest,
      offset: f.offset,
      total: r.total,
      sha256,
      data: r.data.toString('base64'),
    });
  }
}
