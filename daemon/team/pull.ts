/**
 * Team layers between agents: the digests of the team layers this agent has (announced in its
 * presence), serving their archives in chunks, and pulling a missing one from a teammate that
 * has it. A pulled archive is unpacked into a staging folder and checked there in full (a real
 * files/ folder, nothing leading outside it, the team file's digest) before it enters the store;
 * one that fails is discarded and another teammate is tried.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { Presence, TeamFile } from '../../protocol';
import { Agent } from '../agent';
import { TeamTransport } from './transport';
import { digestLayerDir } from './digest';

export interface PullsOptions {
  home: string;
  agent: Agent;
  log: (msg: string) => void;
  /** The team file and node while this agent is in a team. */
  member: () => { spec: TeamFile; node: TeamTransport } | null;
  /** A pulled layer is in the store: apply the team's state again. */
  pulled: () => Promise<void>;
}

/**
 * A source that failed is passed over for a while: after a broken transfer 5 s, doubling with each
 * failure in a row up to 5 minutes (one that has left, or never answers, stops being chosen); after
 * a bad archive 10 minutes.
 */
const RETRY_AFTER_MS = 5_000;
const RETRY_MAX_MS = 5 * 60_000;
const BAD_ARCHIVE_MS = 10 * 60_000;

export interface Candidate {
  agent: string;
  /** Linked to this agent directly (not through a relay). */
  direct: boolean;
  /** When its presence was last heard here (local ms). */
  heardAt: number;
  /** Until when it is passed over after a failure (0: never failed). */
  failedUntil: number;
}

/**
 * The teammate to pull from: among those heard recently (within `staleMs`) and not passed over
 * after a failure, direct links first, then the most recently heard. Null when none qualifies.
 */
export function pickSource(cands: Candidate[], now: number, staleMs: number): Candidate | null {
  const ok = cands.filter((c) => now - c.heardAt <= staleMs && c.failedUntil <= now);
  ok.sort((a, b) => Number(b.direct) - Number(a.direct) || b.heardAt - a.heardAt || (a.agent < b.agent ? -1 : 1));
  return ok[0] ?? null;
}

export class LayerPulls {
  private digests = new Map<string, string>();
  /** Each digest's layer.json (inode, mtime, size) when taken: an edit (the Layer Editor, layer map) needs a new one. */
  private stamps = new Map<string, string>();
  private pulling = new Map<string, { done: number; total: number }>();
  /** Per source agent: until when it is passed over, and its failures in a row. */
  private failed = new Map<string, { until: number; count: number }>();

  constructor(private readonly o: PullsOptions) {}

  /** Digest the team layers in the store not digested yet or edited since; forget those gone. True when a digest changed. */
  async refreshDigests(teamLayers: string[]): Promise<boolean> {
    let changed = false;
    for (const n of teamLayers) {
      if (!this.o.agent.catalog.has(n)) {
        changed = this.digests.delete(n) || changed;
        continue;
      }
      const dir = this.o.agent.store.dir(n);
      const st = await fsp.stat(path.join(dir, 'layer.json')).catch(() => null);
      const stamp = st ? `${st.ino}:${st.mtimeMs}:${st.size}` : '';
      if (this.digests.has(n) && this.stamps.get(n) === stamp) continue;
      const digest = await digestLayerDir(dir).catch((e: Error) => {
        this.o.log(`[team] cannot digest ${n}: ${e.message}`);
        return null;
      });
      if (!digest) continue;
      changed = changed || this.digests.get(n) !== digest;
      this.digests.set(n, digest);
      this.stamps.set(n, stamp);
    }
    return changed;
  }

  /** What this agent can serve, for its presence. */
  has(teamLayers: string[]): Record<string, string> {
    return Object.fromEntries([...this.digests.entries()].filter(([n]) => teamLayers.includes(n)));
  }

  /** Pulls under way, for the team status. */
  inProgress(): { layer: string; done: number; total: number }[] {
    return [...this.pulling.entries()].map(([layer, p]) => ({ layer, ...p }));
  }

  /** Serve a piece of a team layer's archive (exported once per digest). */
  async readChunk(layer: string, digest: string, offset: number, length: number): Promise<{ total: number; data: Buffer } | null> {
    const m = this.o.member();
    if (!m || !Object.prototype.hasOwnProperty.call(m.spec.layers, layer) || this.digests.get(layer) !== digest) return null;
    const dir = path.join(this.o.home, 'exports');
    await fsp.mkdir(dir, { recursive: true });
    const file = path.join(dir, `${layer}-${digest.replace(/^sha256:/, '').slice(0, 16)}.tar.gz`);
    if (!fs.existsSync(file)) await this.o.agent.layers.exportTo(layer, file);
    const fh = await fsp.open(file, 'r');
    try {
      const total = (await fh.stat()).size;
      const buf = Buffer.alloc(Math.max(0, Math.min(length, total - offset)));
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      return { total, data: buf.subarray(0, bytesRead) };
    } finally {
      await fh.close();
    }
  }

  /** The teammate to pull `layer` at `digest` from now, or null. */
  private source(node: TeamTransport, layer: string, digest: string): Presence | null {
    const now = Date.now();
    const direct = new Set(node.connectedAgents());
    const byAgent = new Map<string, Presence>();
    const cands: Candidate[] = [];
    for (const p of node.presences.values()) {
      if (p.has[layer] !== digest || !node.reachable(p.agent)) continue;
      byAgent.set(p.agent, p);
      cands.push({
        agent: p.agent,
        direct: direct.has(p.agent),
        heardAt: node.heardAt(p.agent) ?? 0,
        failedUntil: this.failed.get(p.agent)?.until ?? 0,
      });
    }
    const pick = pickSource(cands, now, 3 * node.limits.heartbeatMs);
    return pick ? byAgent.get(pick.agent)! : null;
  }

  private passOver(agent: string, badArchive: boolean): void {
    const count = (this.failed.get(agent)?.count ?? 0) + 1;
    const ms = badArchive ? BAD_ARCHIVE_MS : Math.min(RETRY_MAX_MS, RETRY_AFTER_MS * 2 ** (count - 1));
    this.failed.delete(agent);
    this.failed.set(agent, { until: Date.now() + ms, count });
    if (this.failed.size > 1024) this.failed.delete(this.failed.keys().next().value as string);
  }

  /** Fetch a missing team layer from a teammate that has it; resumable; verified before it is stored. Never rejects. */
  async pull(layer: string): Promise<void> {
    const first = this.o.member();
    if (!first || this.pulling.has(layer)) return;
    const digest = first.spec.layers[layer]?.digest;
    if (!digest) return;
    this.pulling.set(layer, { done: 0, total: 0 });
    try {
      await this.attempts(layer, digest);
    } catch (e) {
      this.o.log(`[team] pulling ${layer} failed: ${(e as Error).message}`);
    } finally {
      this.pulling.delete(layer);
    }
  }

  private async attempts(layer: string, digest: string): Promise<void> {
    const { agent, log } = this.o;
    const dir = path.join(this.o.home, 'pulls');
    await fsp.mkdir(dir, { recursive: true });
    const part = path.join(dir, `${layer}-${digest.slice(7, 23)}.tar.gz.part`);
    // Archives of one layer differ byte for byte between teammates (tar and gzip record times):
    // a partial download resumes only from the teammate it came from.
    let partFrom: string | null = null;
    for (let attempt = 0; attempt < 20; attempt++) {
      const node = this.o.member()?.node;
      if (!node) return; // left the team
      // With a layer store (NATS), the store is the one source; otherwise a teammate that has it.
      const source = node.layerStore ? await node.layerStore.source(layer, digest) : this.source(node, layer, digest);
      if (!source) {
        const where = node.layerStore ? 'for a teammate to publish' : 'for a connected teammate that has';
        agent.progress(`pull ${layer}`, `waiting ${where} ${layer} (${digest.slice(0, 19)}…)`);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (partFrom !== source.agent) await fsp.rm(part, { force: true });
      partFrom = source.agent;
      const offset = fs.existsSync(part) ? fs.statSync(part).size : 0;
      try {
        await node.pullFrom(source.agent, layer, digest, offset, async (off, data, total) => {
          const fh = await fsp.open(part, off === 0 ? 'w' : 'r+');
          try {
            await fh.write(data, 0, data.length, off);
          } finally {
            await fh.close();
          }
          this.pulling.set(layer, { done: off + data.length, total });
          agent.progress(`pull ${layer}`, `from ${source.user}@${source.host}`, off + data.length, total);
        });
      } catch (e) {
        log(`[team] pulling ${layer} from ${source.agent} stopped: ${(e as Error).message}; will try again`);
        this.passOver(source.agent, false);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      const archive = part.replace(/\.part$/, '');
      await fsp.rename(part, archive);
      partFrom = null;
      try {
        await agent.layers.importFrom(archive, undefined, async (staged, spec) => {
          if (spec.name !== layer) throw new Error(`it holds layer "${spec.name}", not ${layer}`);
          const got = await digestLayerDir(staged);
          if (got !== digest) throw new Error(`its digest is ${got}, not the team file's ${digest}`);
        });
      } catch (e) {
        log(`[team] ${layer} from ${source.agent} (${source.user}@${source.host}) was discarded: ${(e as Error).message}`);
        this.passOver(source.agent, true);
        await node.layerStore?.refuse(digest, null, (e as Error).message);
        continue;
      } finally {
        await fsp.rm(archive, { force: true });
      }
      agent.progress(`pull ${layer}`, 'verified and imported');
      this.failed.delete(source.agent);
      this.pulling.delete(layer);
      await this.o.pulled();
      return;
    }
    log(`[team] giving up on pulling ${layer}`);
  }
}
