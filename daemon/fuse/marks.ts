/**
 * Whiteouts and opaque markers of every layer's writable sublayer, kept in memory for fast lookups
 * and on disk as marker files (`.wh.NAME`, `.wh..wh..opq`) so they survive restarts; reset removes
 * them with the rest of the writable sublayer.
 */
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, WritableMarks, joinRel } from '../../shared/resolver';

export class LayerMarks implements WritableMarks {
  whiteouts = new Set<string>();
  opaque = new Set<string>();
  /** dir rel -> names whited out in it, for listings. */
  private byDir = new Map<string, Set<string>>();

  constructor(readonly writableRoot: string) {}

  /** Scan the writable sublayer for markers (it holds only what tools wrote: small). */
  load(): void {
    this.whiteouts.clear();
    this.opaque.clear();
    this.byDir.clear();
    const walk = (rel: string): void => {
      let ents: fs.Dirent[];
      try {
        ents = fs.readdirSync(path.join(this.writableRoot, rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents) {
        if (e.name === OPAQUE_MARKER) this.opaque.add(rel);
        else if (e.name.startsWith(WHITEOUT_PREFIX)) this.remember(joinRel(rel, e.name.slice(WHITEOUT_PREFIX.length)));
        else if (e.isDirectory()) walk(joinRel(rel, e.name));
      }
    };
    walk('');
  }

  private remember(rel: string): void {
    this.whiteouts.add(rel);
    const { dir, name } = split(rel);
    let s = this.byDir.get(dir);
    if (!s) this.byDir.set(dir, (s = new Set()));
    s.add(name);
  }

  whitedOutIn(dirRel: string): ReadonlySet<string> | undefined {
    return this.byDir.get(dirRel);
  }

  private markerPath(rel: string): string {
    const { dir, name } = split(rel);
    return path.join(this.writableRoot, dir, WHITEOUT_PREFIX + name);
  }

  async addWhiteout(rel: string): Promise<void> {
    if (this.whiteouts.has(rel)) return;
    const { dir } = split(rel);
    await fsp.mkdir(path.join(this.writableRoot, dir), { recursive: true });
    await fsp.writeFile(this.markerPath(rel), '');
    this.remember(rel);
  }

  async removeWhiteout(rel: string): Promise<boolean> {
    if (!this.whiteouts.has(rel)) return false;
    await fsp.rm(this.markerPath(rel), { force: true });
    this.whiteouts.delete(rel);
    const { dir, name } = split(rel);
    this.byDir.get(dir)?.delete(name);
    return true;
  }

  async setOpaque(rel: string): Promise<void> {
    await fsp.writeFile(path.join(this.writableRoot, rel, OPAQUE_MARKER), '');
    this.opaque.add(rel);
  }

  /** Forget markers at or below a directory that was removed from the writable sublayer. */
  dropBelow(rel: string): void {
    const under = (r: string) => rel === '' || r === rel || r.startsWith(rel + '/');
    for (const w of [...this.whiteouts])
      if (under(w) && w !== rel) {
        this.whiteouts.delete(w);
        const { dir, name } = split(w);
        this.byDir.get(dir)?.delete(name);
      }
    for (const o of [...this.opaque]) if (under(o)) this.opaque.delete(o);
  }
}

function split(rel: string): { dir: string; name: string } {
  const i = rel.lastIndexOf('/');
  return i < 0 ? { dir: '', name: rel } : { dir: rel.slice(0, i), name: rel.slice(i + 1) };
}
