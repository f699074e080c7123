/**
 * Team layer archives in the JetStream Object Store, named by the layer's content digest (the
 * team file's): the first agent that has a team layer at the team file's digest publishes its
 * archive; others pull it from the store. The store checks its SHA-256 over the whole object on
 * the way out; pull.ts then checks the unpacked layer against the team file's digest in staging
 * before import. An object that fails either check is deleted here, so a teammate that has the
 * layer publishes it again.
 */
import type { ObjectStore } from '@nats-io/obj';
import { LAYER_DIGEST } from '../../../protocol/team';
import { ReadChunk } from '../chunks';
import { LayerStore, Pruned } from '../transport';

/** What a pull names as its source: the store, not a teammate. */
export const STORE_AGENT = 'nats-object-store';
const PIECE = 128 * 1024;

export interface LayerObjectsOptions {
  os: ObjectStore;
  bucket: string;
  /** The server, for messages ("from the object store at ..."). */
  label: () => string;
  log: (m: string) => void;
  readChunk?: ReadChunk;
  maxLayerBytes: number;
  recheckMs: number;
}

export class LayerObjects implements LayerStore {
  /** Digests found in the store (or published) by this agent, and when: checked again after recheckMs (an object may be deleted). */
  private readonly published = new Map<string, number>();
  private readonly publishing = new Map<string, Promise<void>>();

  constructor(private readonly o: LayerObjectsOptions) {}

  async source(_layer: string, digest: string): Promise<{ agent: string; user: string; host: string } | null> {
    const info = await this.o.os.info(digest).catch(() => null);
    return info && !info.deleted ? { agent: STORE_AGENT, user: 'object store', host: `${this.o.bucket} at ${this.o.label()}` } : null;
  }

  /**
   * Read `digest`'s archive from the store from its start (archives of one layer differ byte for
   * byte between publishers, so a partial one never resumes), handing it to `write` in pieces.
   * Rejects when the store's SHA-256 does not hold; the object is then deleted.
   */
  async fetch(layer: string, digest: string, write: (offset: number, data: Buffer, total: number) => Promise<void>): Promise<void> {
    const r = await this.o.os.get(digest);
    if (!r) throw new Error(`the object store has no archive of ${layer} at ${digest}`);
    const total = r.info.size;
    if (total > this.o.maxLayerBytes)
      throw new Error(`the archive of ${layer} is ${total} bytes, more than the ${this.o.maxLayerBytes} a pull accepts`);
    const reader = r.data.getReader();
    let off = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (!pendingBytes) return;
      const data = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      await write(off, data, total);
      off += data.length;
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (off + pendingBytes + value.length > total) throw new Error(`the object store sent more of ${layer} than its ${total} bytes`);
        pending.push(Buffer.from(value));
        pendingBytes += value.length;
        if (pendingBytes >= 4 * PIECE) await flush();
      }
      await flush();
    } catch (e) {
      await this.refuse(digest, r.info.nuid, (e as Error).message);
      throw new Error(`the archive of ${layer} in the object store was refused: ${(e as Error).message.split('\n')[0]}`, { cause: e });
    }
    if (off !== total) throw new Error(`the object store sent ${off} of the ${total} bytes of ${layer}`);
  }

  /** Delete an object found bad (unless it was replaced meanwhile), so that a holder publishes it again. */
  async refuse(digest: string, nuid: string | null, why: string): Promise<void> {
    this.o.log(`[team] the archive ${digest} in ${this.o.bucket} was refused (${why.split('\n')[0]}): deleting it`);
    const info = await this.o.os.info(digest).catch(() => null);
    if (info && (nuid === null || info.nuid === nuid)) await this.o.os.delete(digest).catch(() => {});
    this.published.delete(digest);
  }

  /**
   * Delete the archives whose digest is not in `keep`; objects not named like a digest are not
   * Strata's and are left alone. An archive is listed only once whole, and its publisher has that
   * layer, so its presence names it (service.ts puts those in `keep`).
   */
  async prune(keep: ReadonlySet<string>, dryRun: boolean): Promise<Pruned> {
    const removed: Pruned['removed'] = [];
    let kept = 0;
    for (const info of await this.o.os.list()) {
      if (info.deleted || !LAYER_DIGEST.test(info.name)) continue;
      if (keep.has(info.name)) {
        kept++;
        continue;
      }
      const layer = /^strata layer (\S+)$/.exec(info.description ?? '')?.[1] ?? '?';
      if (!dryRun) {
        await this.o.os.delete(info.name);
        this.published.delete(info.name);
        this.o.log(`[team] pruned the archive of ${layer} at ${info.name} (${info.size} bytes) from ${this.o.bucket}`);
      }
      removed.push({ digest: info.name, layer, bytes: info.size });
    }
    return { removed, kept };
  }

  /** Publish the archive of `layer` (which this agent has at the team file's `digest`) unless the store has it. */
  publish(layer: string, digest: string): Promise<void> {
    if (Date.now() - (this.published.get(digest) ?? -Infinity) < this.o.recheckMs) return Promise.resolve();
    let p = this.publishing.get(digest);
    if (!p) {
      p = this.put(layer, digest)
        .catch((e) => this.o.log(`[team] publishing ${layer} to ${this.o.bucket} failed: ${(e as Error).message}`))
        .finally(() => this.publishing.delete(digest));
      this.publishing.set(digest, p);
    }
    return p;
  }

  private async put(layer: string, digest: string): Promise<void> {
    const info = await this.o.os.info(digest);
    if (info && !info.deleted) {
      this.published.set(digest, Date.now());
      return;
    }
    const read = this.o.readChunk;
    if (!read) return;
    let off = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        const r = await read(layer, digest, off, PIECE);
        if (!r) return ctrl.error(new Error(`${layer} is no longer here at ${digest}`));
        if (r.data.length) ctrl.enqueue(new Uint8Array(r.data));
        off += r.data.length;
        if (off >= r.total || r.data.length === 0) ctrl.close();
      },
    });
    const t0 = Date.now();
    const put = await this.o.os.put({ name: digest, description: `strata layer ${layer}` }, stream);
    this.published.set(digest, Date.now());
    this.o.log(`[team] published ${layer} (${put.size} bytes) to ${this.o.bucket} in ${Date.now() - t0} ms`);
  }
}
