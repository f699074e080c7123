/**
 * state.json: what the agent restores when it starts (the active set and the views). Written
 * atomically after every change; an unreadable file is set aside, never silently overwritten.
 */
import * as fsp from 'fs/promises';
import { writeFileAtomic } from './atomic';

export interface PersistedState {
  format: 1;
  active: string[];
  views: { base: string; at?: string }[];
}

export class StateFile {
  data: PersistedState = { format: 1, active: [], views: [] };

  constructor(
    readonly file: string,
    private readonly log: (msg: string) => void,
  ) {}

  async load(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch {
      return;
    }
    try {
      const s = JSON.parse(text) as PersistedState;
      if (s.format !== 1 || !Array.isArray(s.active) || !Array.isArray(s.views)) throw new Error('unexpected shape');
      this.data = {
        format: 1,
        active: s.active.filter((x) => typeof x === 'string'),
        views: s.views.filter((v) => v && typeof v.base === 'string').map((v) => (typeof v.at === 'string' ? { base: v.base, at: v.at } : { base: v.base })),
      };
    } catch (e) {
      const aside = `${this.file}.broken-${Date.now()}`;
      await fsp.rename(this.file, aside).catch(() => {});
      this.log(`[agent] ${this.file} was unreadable (${(e as Error).message}); kept it as ${aside} and started with nothing active`);
    }
  }

  save(): Promise<void> {
    return writeFileAtomic(this.file, JSON.stringify(this.data, null, 2) + '\n');
  }
}
