/**
 * The team's replicated state: which team layers are active. One last-writer-wins register per
 * team layer ("layer:NAME" → {active}) and per swap slot ("slot:NAME" → {layer}), each tagged with
 * the hybrid-logical-clock timestamp of the event that wrote it. An event is one decision (its
 * writes share one tag), signed by its origin.
 *
 * Every register is backed by the signed event that wrote it (its winner), and a replica converges
 * by receiving the other's winners: merging is commutative, associative and idempotent, and needs
 * nothing a peer could forge (a register value or seen vector on its word alone). The seen sets
 * only decide what is new (history, forwarding, acknowledgements), never what a register holds.
 *
 * What an event may claim is bounded: its tag is its origin's, its wall no further ahead of ours
 * than maxSkewMs (a refused event never enters the clock), its seq below MAX_SEQ (the schema),
 * and the senders and registers remembered are counted. Pure: no I/O; clock and signer injected.
 * Signatures are checked before receive (node.ts); team-state.json is statefile.ts.
 */
import * as v from 'valibot';
import {
  EventWritesSchema,
  RegisterValue,
  RegisterWrite,
  TaggedRegister,
  TeamEvent,
  TeamEventSchema,
  TeamFile,
  TeamSnapshot,
  TeamSnapshotSchema,
  eventId,
  isAgentId,
  isTeamEvent,
} from '../../protocol/team';
import type { Hlc } from '../../protocol/team';
import { TEAM_STATE_FORMAT, TeamStateFile } from '../../protocol/state';
import { issueMessage } from '../../protocol/schema';
import { HlcClock, compareHlc } from './hlc';
import { SeenSet } from './seen';
import { History, compareEvents, copyEvent, copyTag, copyValue, copyWrites } from './history';
import { desiredActive, unsetValue, writesFor } from './teamset';
import { DEFAULT_LIMITS } from './limits';

export interface Applied {
  /** First time this (origin, seq) was seen. */
  fresh: boolean;
  /** Some register's value changed. */
  changed: boolean;
  /** New in the history (possible for an event seen before, whose gap was given up). */
  recorded?: boolean;
  /** Why the event was refused (nothing changed). */
  refused?: string;
}

export { eventId };
export type { TeamSnapshot };

/** Signs a decision made here (identity.ts); a replica without one (a relay) makes none. */
export type Signer = (ev: Omit<TeamEvent, 'key' | 'sig'>) => TeamEvent;

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** A total order on values, used only to break exact tag ties (a forged or corrupt tag) deterministically. */
function valueRank(v: RegisterValue): string {
  if ('active' in v) return v.active ? 'a1' : 'a0';
  return v.layer === null ? 'l0' : `l1${v.layer}`;
}

function sameValue(a: RegisterValue, b: RegisterValue): boolean {
  return valueRank(a) === valueRank(b);
}

/** Does a write tagged `tag` replace the register `r`? Highest tag wins; exact ties by value. */
function wins(tag: Hlc, value: RegisterValue, r: TaggedRegister | undefined): boolean {
  if (!r) return true;
  const c = compareHlc(tag, r.tag);
  return c > 0 || (c === 0 && valueRank(value) > valueRank(r.value));
}

function checkWrites(writes: RegisterWrite[], what: string): void {
  const r = v.safeParse(v.object({ writes: EventWritesSchema }), { writes });
  if (!r.success) throw new Error(issueMessage(r.issues[0], what));
  const keys = new Set<string>();
  for (const w of writes) {
    if (keys.has(w.key)) throw new Error(`${what}: register ${w.key} written twice in one event`);
    keys.add(w.key);
  }
}

export interface TeamStateOptions {
  /** Events kept for revert, history and catching peers up (default 1000). */
  historyLimit?: number;
  /** Origins whose seen sets are kept (default: limits.ts). */
  maxOrigins?: number;
  /** Registers kept; writes creating more are not stored (default: limits.ts). */
  maxRegisters?: number;
  /** An event whose wall is further ahead of the local clock is refused (default: limits.ts). */
  maxSkewMs?: number;
  /** Only these register keys are stored, and only events writing one of them recorded (an agent's team file); default: any. */
  keeps?: (key: string) => boolean;
  sign?: Signer;
}

export class TeamState {
  readonly selfId: string;
  registers = new Map<string, TaggedRegister>();
  private readonly clock: HlcClock;
  private readonly log: History;
  private readonly seen: SeenSet;
  private readonly o: Required<Omit<TeamStateOptions, 'sign' | 'keeps' | 'historyLimit'>> & Pick<TeamStateOptions, 'sign' | 'keeps'>;
  private ownSeq = 0;
  /** The winner of each register: the event that wrote its value, and how many registers it holds. */
  private readonly winnerOf = new Map<string, string>();
  private readonly winners = new Map<string, { ev: TeamEvent; holds: number }>();
  /** Register writes not stored because of maxRegisters (for logs). */
  droppedWrites = 0;

  constructor(selfId: string, clock: HlcClock, opts: TeamStateOptions = {}) {
    if (!isAgentId(selfId)) throw new Error(`team state: agent id ${JSON.stringify(selfId)} is not a valid id`);
    if (clock.agent !== selfId) throw new Error(`team state: the clock belongs to "${clock.agent}", not "${selfId}"`);
    const limit = opts.historyLimit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`team state: historyLimit must be a positive integer, got ${limit}`);
    this.selfId = selfId;
    this.clock = clock;
    this.log = new History(limit);
    this.o = {
      maxOrigins: opts.maxOrigins ?? DEFAULT_LIMITS.maxOrigins,
      maxRegisters: opts.maxRegisters ?? DEFAULT_LIMITS.maxRegisters,
      maxSkewMs: opts.maxSkewMs ?? DEFAULT_LIMITS.maxSkewMs,
      keeps: opts.keeps,
      sign: opts.sign,
    };
    this.seen = new SeenSet({ self: selfId, maxOrigins: this.o.maxOrigins });
  }

  // ---- dedupe ------------------------------------------------------------------------------------

  /** Has (origin, seq) been seen? */
  hasSeen(origin: string, seq: number): boolean {
    return this.seen.has(origin, seq);
  }

  /**
   * Highest contiguous seq seen per origin (the "applied" vector sent in presence). With `limit`,
   * the most recently active origins only: what fits a frame (WIRE_ORIGINS).
   */
  seenVector(limit?: number): Record<string, number> {
    return this.seen.vector(limit);
  }

  /** Origins remembered, and how many were forgotten to stay within maxOrigins. */
  origins(): { kept: number; forgotten: number } {
    return { kept: this.seen.size, forgotten: this.seen.evicted };
  }

  /** The next local seq: above anything of ours seen anywhere (our own events a peer sends back included). */
  private nextSeq(): number {
    return Math.max(this.ownSeq, this.seen.highest(this.selfId)) + 1;
  }

  /** Is this exact event (same id, same signature) already held? Then it needs no checking again. */
  knows(ev: TeamEvent): boolean {
    const id = eventId(ev);
    const held = this.log.get(id) ?? this.winners.get(id)?.ev;
    return !!held && held.sig === ev.sig;
  }

  // ---- registers ---------------------------------------------------------------------------------

  /** Merge an event's writes under its tag; true if some value changed. */
  private apply(ev: TeamEvent): boolean {
    let changed = false;
    const id = eventId(ev);
    for (const w of ev.writes) {
      if (this.o.keeps && !this.o.keeps(w.key)) continue;
      const r = this.registers.get(w.key);
      if (!r && this.registers.size >= this.o.maxRegisters) {
        this.droppedWrites++;
        continue;
      }
      if (!wins(ev.tag, w.value, r)) continue;
      if (!r || !sameValue(r.value, w.value)) changed = true;
      this.registers.set(w.key, { value: copyValue(w.value), tag: copyTag(ev.tag) });
      this.setWinner(w.key, id, ev);
    }
    return changed;
  }

  private setWinner(key: string, id: string, ev: TeamEvent): void {
    const old = this.winnerOf.get(key);
    if (old === id) return;
    if (old !== undefined) {
      const w = this.winners.get(old)!;
      if (--w.holds === 0) this.winners.delete(old);
    }
    this.winnerOf.set(key, id);
    const w = this.winners.get(id);
    if (w) w.holds++;
    else this.winners.set(id, { ev: copyEvent(ev), holds: 1 });
  }

  private read = (key: string): RegisterValue | undefined => this.registers.get(key)?.value;

  /** The events that hold the registers, oldest first: what a peer needs to converge. */
  winnerEvents(): TeamEvent[] {
    return [...this.winners.values()].map((w) => copyEvent(w.ev)).sort(compareEvents);
  }

  // ---- history -----------------------------------------------------------------------------------

  /** Oldest first (by tag), bounded by historyLimit. */
  history(): TeamEvent[] {
    return this.log.all().map(copyEvent);
  }

  find(id: string): TeamEvent | undefined {
    const ev = this.log.get(id);
    return ev && copyEvent(ev);
  }

  /** Events in history a peer lacks, given its contiguous seen vector (oldest first). */
  missingFor(peerSeen: Record<string, number>): TeamEvent[] {
    return this.log
      .all()
      .filter((ev) => ev.seq > (has(peerSeen, ev.origin) ? peerSeen[ev.origin] : 0))
      .map(copyEvent);
  }

  /** What to send a peer that has seen `peerSeen`: the history it lacks and every winner, oldest first. */
  syncFor(peerSeen: Record<string, number>): TeamEvent[] {
    const out = new Map<string, TeamEvent>();
    for (const ev of [...this.missingFor(peerSeen), ...this.winnerEvents()]) out.set(eventId(ev), ev);
    return [...out.values()].sort(compareEvents);
  }

  // ---- events ------------------------------------------------------------------------------------

  /** Why a remote event is refused, or null. The schema has bounded its fields already. */
  private refusal(ev: TeamEvent): string | null {
    if (ev.tag.agent !== ev.origin) return `its tag names ${ev.tag.agent}, not its origin`;
    const ahead = ev.tag.wall - this.clock.physicalNow();
    if (ahead > this.o.maxSkewMs) return `its clock is ${Math.round(ahead / 1000)} s ahead of ours (at most ${this.o.maxSkewMs / 1000} s)`;
    return null;
  }

  /**
   * Create, record and apply a local decision. Pass the team file so `prev` records what unset
   * registers mean (the defaults); without it unset reads as {active:false} / {layer:null}.
   * Throws on bad writes (none, more than 64, a bad key or value, a key written twice).
   */
  local(writes: RegisterWrite[], user: string, host: string, reverts?: string, team?: TeamFile): TeamEvent {
    if (!this.o.sign) throw new Error('team state: this replica has no key to sign decisions with');
    checkWrites(writes, 'local team event');
    const prev = writes.map((w) => ({ key: w.key, value: this.read(w.key) ?? unsetValue(w.key, team) }));
    const seq = this.nextSeq();
    // A local decision must take effect: if a written register carries a tag our HLC refused to
    // adopt (a peer's clock ahead, within maxSkewMs), catch up with it rather than lose to it.
    const before = this.clock.last();
    let tag = before;
    for (const w of writes) {
      const r = this.registers.get(w.key);
      if (r && compareHlc(r.tag, tag) > 0) tag = r.tag;
    }
    const probe = new HlcClock(this.selfId, () => this.clock.physicalNow());
    probe.restore(tag);
    tag = probe.tick();
    const unsigned: Omit<TeamEvent, 'key' | 'sig'> = { origin: this.selfId, seq, tag, writes: copyWrites(writes), user, host, prev };
    if (reverts !== undefined) unsigned.reverts = reverts;
    const ev = this.o.sign(unsigned);
    const checked = v.safeParse(TeamEventSchema, ev); // before anything moves: a refusal changes nothing
    if (!checked.success) throw new Error(issueMessage(checked.issues[0], 'local team event'));
    this.clock.restore(tag);
    this.ownSeq = seq;
    this.seen.mark(this.selfId, seq);
    this.apply(ev);
    this.log.record(ev);
    return copyEvent(ev);
  }

  /**
   * A remote event (its signature checked by the caller): refused if it claims too much;
   * otherwise its tag is observed, its writes merged LWW (whether or not it was seen before:
   * merging is idempotent) and it is recorded. `fresh` says whether (origin, seq) is new.
   */
  receive(ev: TeamEvent): Applied {
    if (!isTeamEvent(ev)) throw new Error(`malformed team event ${JSON.stringify(ev).slice(0, 200)}`);
    const refused = this.refusal(ev);
    if (refused) return { fresh: false, changed: false, refused };
    this.clock.observe(ev.tag);
    const fresh = this.seen.mark(ev.origin, ev.seq);
    const changed = this.apply(ev);
    // An agent's history holds its team's decisions: writes to keys its team file does not name
    // (noise, or another team file's) must not push them out.
    const ours = !this.o.keeps || ev.writes.some((w) => this.o.keeps!(w.key));
    const recorded = ours && this.log.record(ev);
    return { fresh, changed, recorded };
  }

  /**
   * A peer that sent us everything it holds says it has seen `peerSeen`. Gaps here below what it
   * saw are closed, but never past the highest seq of that origin verified here, and never for
   * our own seq: a peer's word cannot make us skip events nobody showed us.
   */
  markSynced(peerSeen: Record<string, number>): void {
    for (const [origin, n] of Object.entries(peerSeen)) {
      if (origin === this.selfId) continue;
      const top = Math.min(n, this.seen.highest(origin));
      if (top > 0) this.seen.markUpTo(origin, top);
    }
  }

  /** The exchange on (re)connect as one value: every winner and the seen vector. */
  snapshot(): TeamSnapshot {
    return { events: this.winnerEvents(), seen: this.seenVector() };
  }

  /** Take a peer's snapshot: each event received, then its seen vector. Throws on malformed input. */
  mergeSnapshot(s: TeamSnapshot): { changed: boolean; fresh: TeamEvent[]; refused: string[] } {
    const checked = v.safeParse(TeamSnapshotSchema, s);
    if (!checked.success) {
      const issue = checked.issues[0];
      const what = { seen: 'seen entry', events: 'event' }[String(issue.path?.[0]?.key)] ?? 'team snapshot';
      throw new Error(issueMessage(issue, `malformed ${what} in team snapshot`).slice(0, 300));
    }
    let changed = false;
    const fresh: TeamEvent[] = [];
    const refused: string[] = [];
    for (const ev of [...s.events].sort(compareEvents)) {
      const r = this.receive(ev);
      if (r.refused) refused.push(`${eventId(ev)}: ${r.refused}`);
      if (r.changed) changed = true;
      if (r.fresh) fresh.push(copyEvent(ev));
    }
    this.markSynced(s.seen);
    return { changed, fresh, refused };
  }

  /** Writes that undo an event: for each of its writes, the event's prev value. */
  revertWrites(id: string): RegisterWrite[] {
    const ev = this.log.get(id);
    if (!ev) {
      throw new Error(
        `cannot revert team event "${id}": it is not in this agent's history (which keeps the last ${this.log.limit} events)`,
      );
    }
    return ev.writes.map((w) => {
      const p = ev.prev.find((x) => x.key === w.key);
      if (!p) throw new Error(`cannot revert team event "${id}": it did not record the previous value of ${w.key}`);
      return { key: p.key, value: copyValue(p.value) };
    });
  }

  // ---- the team's view (teamset.ts) --------------------------------------------------------------

  desiredActive(team: TeamFile): string[] {
    return desiredActive(this.read, team);
  }

  writesFor(team: TeamFile, op: { activate?: string[]; deactivate?: string[]; swap?: [string, string] }): RegisterWrite[] {
    return writesFor(this.read, team, op);
  }

  // ---- persistence ------------------------------------------------------------------------------

  /** Registers as a plain object sorted by key. */
  registersJSON(): Record<string, TaggedRegister> {
    const out: Record<string, TaggedRegister> = {};
    for (const key of [...this.registers.keys()].sort()) {
      const r = this.registers.get(key)!;
      out[key] = { value: copyValue(r.value), tag: copyTag(r.tag) };
    }
    return out;
  }

  /** Everything needed to persist: winners (registers derive from them), seen, own seq, history, clock. */
  toJSON(): TeamStateFile {
    return {
      format: TEAM_STATE_FORMAT,
      self: this.selfId,
      seq: this.ownSeq,
      clock: this.clock.last(),
      registers: this.registersJSON(),
      winners: this.winnerEvents(),
      seen: this.seen.toJSON(),
      history: this.history(),
    };
  }

  /** Rebuild from a saved state that statefile.ts has checked. */
  static restore(clock: HlcClock, saved: TeamStateFile, opts: TeamStateOptions = {}): TeamState {
    const st = new TeamState(saved.self, clock, opts);
    // Our own persisted timestamp is trusted; stored remote tags pass the drift guard again, as
    // they did on arrival (a peer's wall must not enter the clock through a restart).
    clock.restore(saved.clock);
    for (const ev of saved.winners) {
      clock.observe(ev.tag);
      st.apply(ev);
    }
    for (const [origin, e] of Object.entries(saved.seen)) st.seen.restore(origin, e);
    for (const ev of saved.history) {
      clock.observe(ev.tag);
      st.log.record(ev);
    }
    st.ownSeq = saved.seq;
    return st;
  }
}
