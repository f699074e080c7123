/**
 * state.json: what the agent restores when it starts (the active set and the views). Written
 * atomically after every change; an unreadable file is set aside, never silently overwritten.
 */
import * as fsp from 'fs/promises';
import { AgentState, AgentStateSchema, parseJson } from '../protocol';
import { removeStaleTemps, writeFileAtomic } from './atomic';

export class StateFile {
  data: AgentState = { format: 1, active: [], views: [] };

  constructor(
    readonly file: string,
    private readonly log: (msg: string) => void,
  ) {}

  async load(): Promise<void> {
    // Only this agent writes the file, and it has not yet: any temp file is a killed agent's.
    await removeStaleTemps(this.file);
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch {
      return;
    }
    await fsp.chmod(this.file, 0o600).catch(() => {});
    try {
      this.data = parseJson(AgentStateSchema, text, this.file);
    } catch (e) {
      const aside = `${this.file}.broken-${Date.now()}`;
      await fsp.rename(this.file, aside).catch(() => {});
      this.log(`[agent] ${this.file} was unreadable (${(e as Error).message}); kept it as ${aside} and started with nothing active`);
    }
  }

  /** Write `next`, and only then make it the state: a failed write leaves both as they were. */
  async commit(next: AgentState): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(next, null, 2) + '\n');
    this.data = next;
  }

  save(): Promise<void> {
    return this.commit(this.data);
  }
}
