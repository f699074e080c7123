/**
 * Presence in its own KV bucket: one key per agent, its latest signed presence (with the team
 * MAC), written on change (at most one per 200 ms) and refreshed every heartbeat; the bucket's max
 * age (three heartbeats) drops an agent that stopped. Each agent watches the bucket: the server
 * sends it each teammate's refresh once, and no agent forwards anyone's presence (the built-in
 * relay floods them agent to agent).
 */
import { KV, KvWatchEntry } from '@nats-io/kv';
import { Presence } from '../../../protocol';
import { KeyRing } from '../identity';
import { RefusalLog } from '../refusals';
import { presenceKey } from './names';
import { retried } from './decisions';
import { openPresenceSigned, sealPresence } from './seal';
import { Watching } from './watch';

export interface PresenceOptions {
  kv: KV;
  bucket: string;
  team: string;
  key: Buffer;
  agent: string;
  keys: KeyRing;
  refusals: RefusalLog;
  log: (m: string) => void;
  maxSkewMs: number;
  /** Agents remembered at most; the least recently heard are forgotten first. */
  max: number;
  /** A teammate's presence arrived or changed. */
  changed: (p: Presence) => void;
}

export class PresenceBoard {
  /** Least recently heard first. */
  readonly byAgent = new Map<string, Presence>();
  private readonly heard = new Map<string, number>();
  private stopped = false;
  private readonly watching = new Watching<KvWatchEntry>(
    'the presence bucket',
    (m) => this.o.log(m),
    () => this.stopped,
  );
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: PresenceOptions) {}

  /** Watch the latest presence of each agent, then every change (again after a reconnect: a watch does not outlive its server). */
  async start(): Promise<void> {
    const it = await retried(() => this.o.kv.watch({ key: '>', ignoreDeletes: true }));
    this.watching.follow(it, (e) => this.entry(e));
  }

  stop(): void {
    this.stopped = true;
    this.watching.stop();
  }

  heardAt(agent: string): number | undefined {
    return this.heard.get(agent);
  }

  /** Store this agent's presence (writes queue behind each other: never an older one last). */
  put(p: Presence): void {
    const value = sealPresence(this.o.key, this.o.team, p);
    this.writing = this.writing
      .then(() => this.o.kv.put(presenceKey(this.o.agent), value))
      .catch((e) => {
        if (!this.stopped) this.o.log(`[team] storing this agent's presence failed: ${(e as Error).message}`);
      });
  }

  private entry(e: KvWatchEntry): void {
    if (e.operation !== 'PUT') return;
    const what = `presence in ${this.o.bucket} ${e.key}`;
    const opened = openPresenceSigned(this.o.key, this.o.team, e.value);
    if (typeof opened === 'string') return this.o.refusals.refuse(what, opened);
    const p = opened.value;
    if (p.agent === this.o.agent) return;
    if (e.key !== presenceKey(p.agent)) return this.o.refusals.refuse(what, `it is ${p.agent}'s, under another agent's key`);
    const old = this.byAgent.get(p.agent);
    if (old && p.pseq <= old.pseq) return;
    const now = Date.now();
    const ahead = Math.max(p.at, p.pseq) - now;
    if (ahead > this.o.maxSkewMs) return this.o.refusals.refuse(what, `its clock is ${Math.round(ahead / 1000)} s ahead of ours`);
    const bad = this.o.keys.verify(p.agent, p.key, opened.signed, p.sig);
    if (bad) return this.o.refusals.refuse(what, `it carries ${bad}`);
    // Heard when the server stored it (a value read at start may be most of a max age old).
    const heard = e.isUpdate ? now : Math.min(now, e.created.getTime());
    this.byAgent.delete(p.agent);
    this.byAgent.set(p.agent, p);
    this.heard.set(p.agent, heard);
    for (const agent of this.byAgent.keys()) {
      if (this.byAgent.size <= this.o.max) break;
      this.byAgent.delete(agent);
      this.heard.delete(agent);
    }
    this.o.changed(p);
  }
}
