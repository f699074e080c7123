/**
 * state.json: what the agent restores when it starts (the active set and the views). Written
 * atomically after every change; an unreadable file is set aside, never silently overwritten.
 * A change is acknowledged once the file is renamed into place (that survives the agent being
 * killed); the fsync that makes it survive a power loss follows, one for a burst of changes
 * (docs/design.md, "state.json: synced after the answer").
 */
import * as fsp from 'fs/promises';
import { AgentState, AgentStateSchema, parseJson } from '../protocol';
import { removeStaleTemps, syncFile, writeFileAtomicUnsynced } from './atomic';

/** Commits this close together share one fsync (and the answer to a switch goes out first). */
const SYNC_DELAY_MS = 5;

export class StateFile {
  data: AgentState = { format: 1, active: [], views: [] };
  /** A commit since the last fsync began, and the fsyncs running (null when all are synced). */
  private unsynced = false;
  private syncing: Promise<void> | null = null;

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
    writeFileAtomicUnsynced(this.file, JSON.stringify(next, null, 2) + '\n');
    this.data = next;
    this.unsynced = true;
    this.syncing ??= new Promise<void>((r) => setTimeout(r, SYNC_DELAY_MS)).then(() => this.syncLoop());
  }

  /** Resolves once every committed state is on disk (the agent stopping waits for it). */
  async flush(): Promise<void> {
    await this.syncing;
  }

  private async syncLoop(): Promise<void> {
    while (this.unsynced) {
      this.unsynced = false;
      await syncFile(this.file).catch((e: Error) => this.log(`[agent] could not sync ${this.file}: ${e.message}`));
    }
    this.syncing = null;
  }

  save(): Promise<void> {
    return this.commit(this.data);
  }
}
