/**
 * state.json: what the agent restores when it starts (the active set and the views). Written
 * atomically after every change; an unreadable file is set aside, never silently overwritten.
 */
import * as fsp from 'fs/promises';
import { AgentState, AgentStateSchema, parseJson } from '../protocol';
import { writeFileAtomic } from './atomic';

export class StateFile {
  data: AgentState = { format: 1, active: [], views: [] };

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
      this.data = parseJson(AgentStateSchema, text, this.file);
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
