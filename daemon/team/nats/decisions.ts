/**
 * The team's decisions in a JetStream KV bucket: one key per register ("layer.NAME", "slot.NAME"),
 * its value the signed event that last won it (with the team MAC, seal.ts). A write is a
 * compare-and-set on the key's revision that never replaces a value whose event wins under the
 * registers' own rule (highest HLC tag): so the bucket's latest value per key is the register,
 * whatever order concurrent writers reach the server in, and every agent resolves them alike.
 * A swap within a slot is one key; an event writing several keys is applied whole by whoever reads
 * any one of them (the value is the whole event), and its origin writes the rest, again on restart.
 *
 * Agents watch the bucket: a new agent from the start of every key's history (team history and
 * revert read it), a returning one from the revision after the last it persisted with its state.
 */
import * as fsp from 'fs/promises';
import { KV, KvWatchEntry } from '@nats-io/kv';
import { NatsCursorSchema, TeamEvent, eventId, parseJson } from '../../../protocol';
import { TeamState } from '../state';
import { KeyRing } from '../identity';
import { RefusalLog } from '../refusals';
import { compareHlc } from '../hlc';
import type { Hlc } from '../../../protocol';
import { writeFileAtomic } from '../../atomic';
import { kvKey, registerOf } from './names';
import { openEvent, openEventSigned, sealEvent } from './seal';
import { Watching } from './watch';

/** JetStream's "wrong last sequence" (a compare-and-set lost the race). */
const WRONG_LAST_SEQUENCE = 10071;

export interface DecisionsOptions {
  kv: KV;
  bucket: string;
  team: string;
  /** The team MAC key. */
  key: Buffer;
  agent: string;
  state: TeamState;
  keys: KeyRing;
  refusals: RefusalLog;
  log: (m: string) => void;
  cursorFile: string;
  /** The registers changed or a decision was recorded: persist and apply. */
  changed: () => void;
}

export class Decisions {
  /** The revision of the last entry handed to the state. */
  private revision = 0;
  private savedRevision = 0;
  /** The revision at the last check (check()). */
  private checkedAt = -1;
  private stopped = false;
  private readonly watching = new Watching<KvWatchEntry>(
    'the decisions bucket',
    (m) => this.o.log(m),
    () => this.stopped,
  );
  private readonly writes = new Map<string, Promise<void>>();
  /** Each key's latest revision as read here, and the tag of the event it holds (null: not a member's): a write needs no read first. */
  private readonly latest = new Map<string, { revision: number; tag: Hlc | null }>();
  /** Resolves once the watch has read what the bucket held when it started. */
  caughtUp: Promise<void>;
  private markCaughtUp!: () => void;

  constructor(private readonly o: DecisionsOptions) {
    this.caughtUp = new Promise((r) => (this.markCaughtUp = r));
  }

  /** Start watching from where this agent's persisted state stands. */
  async start(): Promise<void> {
    const cursor = await readCursor(this.o.cursorFile);
    const last = (await retried(() => this.o.kv.status())).streamInfo.state.last_seq;
    let from = 0;
    if (cursor && cursor.agent === this.o.agent && cursor.bucket === this.o.bucket) {
      // A bucket made anew (a server that lost its store) numbers from 1 again: read it all.
      if (cursor.revision <= last) from = cursor.revision;
      else this.o.log(`[team] the decisions bucket is behind what this agent read (${last} < ${cursor.revision}): reading it all`);
    }
    this.revision = this.savedRevision = from;
    if (from >= last) this.markCaughtUp();
    await this.watch(last);
    if (from > 0) this.o.log(`[team] resuming the team's decisions after revision ${from} (of ${last})`);
  }

  /** Watch from the revision after the last one read (from every key's history when none was). */
  private async watch(last: number): Promise<void> {
    const from = this.revision;
    const it = await retried(() =>
      this.o.kv.watch(
        from > 0 ? { key: '>', resumeFromRevision: from + 1, ignoreDeletes: true } : { key: '>', include: 'history', ignoreDeletes: true },
      ),
    );
    this.watching.follow(it, (e) => {
      this.entry(e);
      if (e.revision >= last) this.markCaughtUp();
    });
  }

  /**
   * A watch does not outlive the server holding its consumer (a cluster node lost): after a
   * reconnect, or when the bucket is ahead and nothing arrived since the last check, watch again
   * from the last revision read.
   */
  async check(reconnected: boolean): Promise<void> {
    if (this.stopped) return;
    const last = (await retried(() => this.o.kv.status())).streamInfo.state.last_seq;
    const stalled = last > this.revision && this.revision === this.checkedAt;
    this.checkedAt = this.revision;
    if (!reconnected && !stalled) return;
    if (stalled) this.o.log(`[team] the decisions watch stalled at revision ${this.revision} (the bucket is at ${last}): watching again`);
    await this.watch(last);
  }

  /** Read every key's latest value again (the registers a new team file names were not kept before). */
  async resync(): Promise<void> {
    if ((await this.o.kv.status()).values === 0) return;
    const it = await retried(() => this.o.kv.watch({ key: '>', ignoreDeletes: true }));
    for await (const e of it) {
      this.entry(e, true);
      if (!e.delta) break;
    }
    it.stop();
  }

  stop(): void {
    this.stopped = true;
    this.watching.stop();
  }

  private entry(e: KvWatchEntry, again = false): void {
    if (!again) this.revision = Math.max(this.revision, e.revision);
    if (e.operation !== 'PUT') return;
    const what = `${this.o.bucket} ${e.key} revision ${e.revision}`;
    if (registerOf(e.key) === null) return this.o.refusals.refuse(what, 'it is not a key Strata writes');
    const opened = openEventSigned(this.o.key, this.o.team, e.value);
    if ((this.latest.get(e.key)?.revision ?? 0) < e.revision)
      this.latest.set(e.key, { revision: e.revision, tag: typeof opened === 'string' ? null : opened.value.tag });
    if (typeof opened === 'string') return this.o.refusals.refuse(what, opened);
    const ev = opened.value;
    const { state } = this.o;
    if (state.knows(ev)) return;
    const bad = this.o.keys.verify(ev.origin, ev.key, opened.signed, ev.sig);
    if (bad) return this.o.refusals.refuse(`event ${eventId(ev)} in ${what}`, `it carries ${bad}`);
    if (!ev.writes.some((w) => kvKey(w.key) === e.key)) {
      return this.o.refusals.refuse(`event ${eventId(ev)} in ${what}`, 'it does not write that key');
    }
    const r = state.receive(ev);
    if (r.refused) return this.o.refusals.refuse(`event ${eventId(ev)} in ${what}`, r.refused);
    if (r.fresh || r.changed || r.recorded) this.o.changed();
  }

  /** The revision read so far (persist it with the state). */
  mark(): number {
    return this.revision;
  }

  /** The state as of `mark` is on disk: a restart resumes after it. */
  saved(mark: number): void {
    if (mark <= this.savedRevision || this.stopped) return;
    this.savedRevision = mark;
    const text = JSON.stringify({ agent: this.o.agent, bucket: this.o.bucket, revision: mark }) + '\n';
    writeFileAtomic(this.o.cursorFile, text).catch((e) => this.o.log(`[team] ${(e as Error).message}`));
  }

  /** Store a decision made here in every key it writes; retried until stored (or stopped). */
  publish(ev: TeamEvent): Promise<void> {
    const id = eventId(ev);
    let p = this.writes.get(id);
    if (!p) {
      p = this.storeWithRetry(ev).finally(() => this.writes.delete(id));
      this.writes.set(id, p);
    }
    return p;
  }

  private async storeWithRetry(ev: TeamEvent): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        for (const w of ev.writes) await this.store(kvKey(w.key), ev);
        return;
      } catch (e) {
        if (attempt === 0 || attempt % 20 === 0)
          this.o.log(`[team] storing decision ${eventId(ev)} failed (will retry): ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** Math.min(attempt, 5))));
      }
    }
  }

  /** Compare-and-set `ev` into `key` unless the bucket already holds an event that wins there. */
  private async store(key: string, ev: TeamEvent): Promise<void> {
    const value = sealEvent(this.o.key, this.o.team, ev);
    // What the watch last showed of the key; read from the server when unknown or stale.
    let cur = this.latest.get(key);
    for (let read = cur === undefined; ; read = true) {
      if (read) {
        const e = await this.o.kv.get(key);
        const held = e && e.operation === 'PUT' ? openEvent(this.o.key, this.o.team, e.value) : null;
        cur = e ? { revision: e.revision, tag: held && typeof held !== 'string' ? held.tag : null } : undefined;
      }
      // A value that is not a member's is replaced; one whose tag wins stays.
      if (cur?.tag && compareHlc(cur.tag, ev.tag) >= 0) return;
      try {
        const revision = cur ? await this.o.kv.update(key, value, cur.revision) : await this.o.kv.create(key, value);
        if ((this.latest.get(key)?.revision ?? 0) < revision) this.latest.set(key, { revision, tag: ev.tag });
        return;
      } catch (e) {
        if ((e as { code?: number }).code !== WRONG_LAST_SEQUENCE && !/wrong last sequence|key exists/i.test((e as Error).message)) throw e;
        // Someone wrote the key since: read it again.
      }
    }
  }

  /**
   * After a restart (or a server that lost its store): make sure the bucket holds this agent's
   * own winning decisions, so a crash between keys or before a write leaves nothing out.
   */
  async republishOwn(): Promise<void> {
    await this.caughtUp;
    for (const ev of this.o.state.winnerEvents()) if (ev.origin === this.o.agent) await this.publish(ev);
  }
}

async function readCursor(file: string) {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    return parseJson(NatsCursorSchema, text, file);
  } catch {
    return null;
  }
}

/**
 * A call that may time out while a cluster recovers from a lost node (a consumer placed on it, a
 * leader being elected): tried again a few times.
 */
export async function retried<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !/timeout/i.test((e as Error).message)) throw e;
    }
  }
}
