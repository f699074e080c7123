/**
 * Team layers between agents: the digests of the team layers this agent has (announced in its
 * presence), serving their archives in chunks, and pulling a missing one from a connected
 * teammate that has it: resumable, verified against the team file's digest, then imported.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { TeamFile } from '../../protocol';
import { Agent } from '../agent';
import { TeamNode } from './node';
import { digestLayerDir } from './digest';

export interface PullsOptions {
  home: string;
  agent: Agent;
  log: (msg: string) => void;
  /** The team file and node while this agent is in a team. */
  member: () => { spec: TeamFile; node: TeamNode } | null;
  /** A pulled layer is in the store: apply the team's state again. */
  pulled: () => Promise<void>;
}

export class LayerPulls {
  private digests = new Map<string, string>();
  /** Each digest's layer.json (inode, mtime, size) when taken: an edit (the Layer Editor, layer map) needs a new one. */
  private stamps = new Map<string, string>();
  private pulling = new Map<string, { done: number; total: number }>();

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
      const digest = await digestLayerDir(dir);
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

  /** Fetch a missing team layer from a connected peer that has it; resumable; verified. */
  async pull(layer: string): Promise<void> {
    const { agent, log } = this.o;
    const first = this.o.member();
    if (!first || this.pulling.has(layer)) return;
    const digest = first.spec.layers[layer]?.digest;
    if (!digest) return;
    this.pulling.set(layer, { done: 0, total: 0 });
    const dir = path.join(this.o.home, 'pulls');
    await fsp.mkdir(dir, { recursive: true });
    const part = path.join(dir, `${layer}-${digest.slice(7, 23)}.tar.gz.part`);
    try {
      for (let attempt = 0; attempt < 20; attempt++) {
        const node = this.o.member()?.node;
        if (!node) break; // left the team
        const source = [...node.presences.values()].find((p) => p.has[layer] === digest && node.reachable(p.agent));
        if (!source) {
          agent.progress(`pull ${layer}`, `waiting for a connected teammate that has ${layer} (${digest.slice(0, 19)}…)`);
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
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
          log(`[team] pulling ${layer} from ${source.agent} stopped: ${(e as Error).message}; will resume`);
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        const archive = part.replace(/\.part$/, '');
        await fsp.rename(part, archive);
        const spec = await agent.layers.importFrom(archive);
        const got = await digestLayerDir(agent.store.dir(spec.name));
        await fsp.rm(archive, { force: true });
        if (spec.name !== layer || got !== digest) {
          await agent.layers.remove(spec.name).catch(() => {});
          log(`[team] ${layer} from ${source.agent} did not match the team file (${got}); discarded`);
          continue;
        }
        agent.progress(`pull ${layer}`, 'verified and imported');
        this.pulling.delete(layer);
        await this.o.pulled();
        return;
      }
      log(`[team] giving up on pulling ${layer}`);
    } finally {
      this.pulling.delete(layer);
    }
  }
}
