/**
 * The team's replicated state: which team layers are active. One last-writer-wins register per
 * team layer ("layer:NAME" → {active}) and per swap slot ("slot:NAME" → {layer}), each tagged with
 * the hybrid-logical-clock timestamp of the event that wrote it. An event is one decision (its
 * writes share one tag) and is applied at most once per replica, deduplicated by (origin, seq) even
 * when delivered twice or out of order. Merging is commutative, associative and idempotent, so all
 * replicas that have seen the same events hold the same registers.
 *
 * Pure: no I/O; the clock is injected. team-state.json (its format and checks) is statefile.ts.
 */
import * as v from 'valibot';
import {
  EventWritesSchema,
  MAX_FRAME,
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
import { StrataError } from '../../shared/errors';
import { HlcClock, compareHlc } from './hlc';
import { SeenSet } from './seen';

export interface Applied {
  /** First time this (origin, seq) was seen. */
  fresh: boolean;
  /** Some register's value changed. */
  changed: boolean;
}

export { eventId };
export type { TeamSnapshot };

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** A total order on values, used only to break exact tag ties (a forged or corrupt tag) deterministically. */
function valueRank(v: RegisterValue): string {
  if ('active' in v) return v.active ? 'a1' : 'a0';
  return v.layer === null ? 'l0' : `l1${v.layer}`;
}

function sameValue(a: RegisterValue, b: RegisterValue): boolean {
  return valueRank(a) === valueRank(b);
}

function copyValue(v: RegisterValue): RegisterValue {
  return 'active' in v ? { active: v.active } : { layer: v.layer };
}

function copyTag(t: Hlc): Hlc {
  return { wall: t.wall, logical: t.logical, agent: t.agent };
}

function copyWrites(ws: RegisterWrite[]): RegisterWrite[] {
  return ws.map((w) => ({ key: w.key, value: copyValue(w.value) }));
}

function copyEvent(ev: TeamEvent): TeamEvent {
  const out: TeamEvent = {
    origin: ev.origin,
    seq: ev.seq,
    tag: copyTag(ev.tag),
    writes: copyWrites(ev.writes),
    user: ev.user,
    host: ev.host,
    prev: copyWrites(ev.prev),
  };
  if (ev.reverts !== undefined) out.reverts = ev.reverts;
  return out;
}

/** Does a write tagged `tag` replace the register `r`? Highest tag wins; exact ties by value. */
function wins(tag: Hlc, value: RegisterValue, r: TaggedRegister | undefined): boolean {
  if (!r) return true;
  const c = compareHlc(tag, r.tag);
  return c > 0 || (c === 0 && valueRank(value) > valueRank(r.value));
}

function compareEvents(a: TeamEvent, b: TeamEvent): number {
  const c = compareHlc(a.tag, b.tag);
  if (c !== 0) return c;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return a.seq - b.seq;
}

/** The slots a layer belongs to, sorted. */
function slotsOf(team: TeamFile, layer: string): string[] {
  return Object.keys(team.slots)
    .filter((s) => team.slots[s].includes(layer))
    .sort();
}

/** The slot's layer when its register is unset: its first member listed in the defaults. */
function defaultSlotLayer(team: TeamFile, slot: string): string | null {
  return (team.slots[slot] ?? []).find((m) => team.defaults.includes(m)) ?? null;
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
  /** Events kept for revert, history and snapshots (default 1000). */
  historyLimit?: number;
}

export class TeamState {
  readonly selfId: string;
  registers = new Map<string, TaggedRegister>();
  private readonly clock: HlcClock;
  private readonly historyLimit: number;
  private readonly seen = new SeenSet();
  private ownSeq = 0;
  /** Sorted by (tag, origin, seq): oldest first. */
  private events: TeamEvent[] = [];
  private readonly byId = new Map<string, TeamEvent>();

  constructor(selfId: string, clock: HlcClock, opts: TeamStateOptions = {}) {
    if (!isAgentId(selfId)) throw new Error(`team state: agent id ${JSON.stringify(selfId)} is not a valid id`);
    if (clock.agent !== selfId) throw new Error(`team state: the clock belongs to "${clock.agent}", not "${selfId}"`);
    const limit = opts.historyLimit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`team state: historyLimit must be a positive integer, got ${limit}`);
    this.selfId = selfId;
    this.clock = clock;
    this.historyLimit = limit;
  }

  // ---- dedupe ------------------------------------------------------------------------------------

  /** Has (origin, seq) been seen? */
  hasSeen(origin: string, seq: number): boolean {
    return this.seen.has(origin, seq);
  }

  /** Highest contiguous seq seen per origin (the "applied" vector sent in presence). */
  seenVector(): Record<string, number> {
    return this.seen.vector();
  }

  /** The next local seq: above anything of ours seen anywhere (so a lost state file cannot reuse a seq peers already hold). */
  private nextSeq(): number {
    return Math.max(this.ownSeq, this.seen.highest(this.selfId)) + 1;
  }

  // ---- registers ---------------------------------------------------------------------------------

  /** Merge writes sharing one tag; true if some value changed. */
  private apply(writes: RegisterWrite[], tag: Hlc): boolean {
    let changed = false;
    for (const w of writes) {
      const r = this.registers.get(w.key);
      if (!wins(tag, w.value, r)) continue;
      if (!r || !sameValue(r.value, w.value)) changed = true;
      this.registers.set(w.key, { value: copyValue(w.value), tag: copyTag(tag) });
    }
    return changed;
  }

  /** A register's value, or what an unset register means (with the team file: its defaults). */
  private current(key: string, team?: TeamFile): RegisterValue {
    const r = this.registers.get(key);
    if (r) return copyValue(r.value);
    const name = key.slice(key.indexOf(':') + 1);
    if (key.startsWith('layer:')) return { active: team ? team.defaults.includes(name) : false };
    return { layer: team ? defaultSlotLayer(team, name) : null };
  }

  private slotLayer(team: TeamFile, slot: string): string | null {
    const r = this.registers.get(`slot:${slot}`);
    if (r && 'layer' in r.value) return r.value.layer;
    return defaultSlotLayer(team, slot);
  }

  private layerActive(team: TeamFile, layer: string): boolean {
    const r = this.registers.get(`layer:${layer}`);
    if (r && 'active' in r.value) return r.value.active;
    return team.defaults.includes(layer);
  }

  // ---- history -----------------------------------------------------------------------------------

  private record(ev: TeamEvent): void {
    const id = eventId(ev);
    if (this.byId.has(id)) return;
    const copy = copyEvent(ev);
    const list = this.events;
    let i = list.length;
    if (i > 0 && compareEvents(list[i - 1], copy) > 0) {
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compareEvents(list[mid], copy) <= 0) lo = mid + 1;
        else hi = mid;
      }
      i = lo;
    }
    list.splice(i, 0, copy);
    this.byId.set(id, copy);
    while (list.length > this.historyLimit) this.byId.delete(eventId(list.shift()!));
  }

  /** Oldest first (by tag), bounded by historyLimit. */
  history(): TeamEvent[] {
    return this.events.map(copyEvent);
  }

  find(id: string): TeamEvent | undefined {
    const ev = this.byId.get(id);
    return ev && copyEvent(ev);
  }

  /** Events in history a peer lacks, given its contiguous seen vector (oldest first). */
  missingFor(peerSeen: Record<string, number>): TeamEvent[] {
    return this.events.filter((ev) => ev.seq > (has(peerSeen, ev.origin) ? peerSeen[ev.origin] : 0)).map(copyEvent);
  }

  // ---- events ------------------------------------------------------------------------------------

  /**
   * Create, record and apply a local decision. Pass the team file so `prev` records what unset
   * registers mean (the defaults); without it unset reads as {active:false} / {layer:null}.
   * Throws on bad writes (none, more than 64, a bad key or value, a key written twice).
   */
  local(writes: RegisterWrite[], user: string, host: string, reverts?: string, team?: TeamFile): TeamEvent {
    checkWrites(writes, 'local team event');
    const prev = writes.map((w) => ({ key: w.key, value: this.current(w.key, team) }));
    const seq = this.nextSeq();
    const ev: TeamEvent = { origin: this.selfId, seq, tag: this.clock.last(), writes: copyWrites(writes), user, host, prev };
    if (reverts !== undefined) ev.reverts = reverts;
    const checked = v.safeParse(TeamEventSchema, ev); // before the clock moves: a refusal changes nothing
    if (!checked.success) throw new Error(issueMessage(checked.issues[0], 'local team event'));
    // A local decision must take effect: if a written register carries a tag from a clock our HLC
    // refused to follow (too far ahead), catch up with it rather than lose to it.
    const last = this.clock.last();
    for (const w of writes) {
      const r = this.registers.get(w.key);
      if (r && compareHlc(r.tag, last) >= 0) this.clock.restore(r.tag);
    }
    ev.tag = this.clock.tick();
    this.ownSeq = seq;
    this.seen.mark(this.selfId, seq);
    this.apply(ev.writes, ev.tag);
    this.record(ev);
    return copyEvent(ev);
  }

  /** A remote event: observe its tag, dedupe by (origin, seq), merge each write LWW by the event tag. */
  receive(ev: TeamEvent): Applied {
    if (!isTeamEvent(ev)) throw new Error(`malformed team event ${JSON.stringify(ev).slice(0, 200)}`);
    this.clock.observe(ev.tag);
    if (!this.seen.mark(ev.origin, ev.seq)) return { fresh: false, changed: false };
    const changed = this.apply(ev.writes, ev.tag);
    this.record(ev);
    return { fresh: true, changed };
  }

  /**
   * Exchange on (re)connect. Events first (each fresh one applied and reported), then registers
   * (LWW), then the seen vector: the peer's registers already hold the effect of every event its
   * vector covers, so those need no replay. Throws on malformed input (checkFrame rejects it first).
   */
  mergeSnapshot(s: TeamSnapshot): { changed: boolean; fresh: TeamEvent[] } {
    const checked = v.safeParse(TeamSnapshotSchema, s);
    if (!checked.success) {
      const issue = checked.issues[0];
      const what = { registers: 'register', seen: 'seen entry', events: 'event' }[String(issue.path?.[0]?.key)] ?? 'team snapshot';
      throw new Error(issueMessage(issue, `malformed ${what} in team snapshot`).slice(0, 300));
    }

    for (const r of Object.values(s.registers)) this.clock.observe(r.tag);
    for (const ev of s.events) this.clock.observe(ev.tag);

    let changed = false;
    const fresh: TeamEvent[] = [];
    for (const ev of [...s.events].sort(compareEvents)) {
      if (this.seen.mark(ev.origin, ev.seq)) {
        if (this.apply(ev.writes, ev.tag)) changed = true;
        fresh.push(copyEvent(ev));
      }
      this.record(ev);
    }
    for (const [key, r] of Object.entries(s.registers)) {
      const cur = this.registers.get(key);
      if (!wins(r.tag, r.value, cur)) continue;
      if (!cur || !sameValue(cur.value, r.value)) changed = true;
      this.registers.set(key, { value: copyValue(r.value), tag: copyTag(r.tag) });
    }
    for (const [origin, n] of Object.entries(s.seen)) this.seen.markUpTo(origin, n);
    return { changed, fresh };
  }

  /**
   * What to send a peer on (re)connect. Events are the newest of the history that fit: at most
   * `maxEvents` (default 1000, the frame check's limit) and, with the frame around it, at most
   * `maxBytes` of JSON (default MAX_FRAME). Registers and the seen vector are always complete.
   */
  snapshot(opts: { maxBytes?: number; maxEvents?: number } = {}): TeamSnapshot {
    const registers: Record<string, TaggedRegister> = {};
    for (const key of [...this.registers.keys()].sort()) {
      const r = this.registers.get(key)!;
      registers[key] = { value: copyValue(r.value), tag: copyTag(r.tag) };
    }
    const seen = this.seenVector();
    const maxBytes = opts.maxBytes ?? MAX_FRAME;
    const maxEvents = opts.maxEvents ?? 1000;
    let size = Buffer.byteLength(JSON.stringify({ t: 'snapshot', registers, seen, events: [] }));
    const picked: TeamEvent[] = [];
    for (let i = this.events.length - 1; i >= 0 && picked.length < maxEvents; i--) {
      const add = Buffer.byteLength(JSON.stringify(this.events[i])) + (picked.length ? 1 : 0);
      if (size + add > maxBytes) break;
      size += add;
      picked.push(copyEvent(this.events[i]));
    }
    return { registers, seen, events: picked.reverse() };
  }

  /** Writes that undo an event: for each of its writes, the event's prev value. */
  revertWrites(id: string): RegisterWrite[] {
    const ev = this.byId.get(id);
    if (!ev) {
      throw new Error(
        `cannot revert team event "${id}": it is not in this agent's history (which keeps the last ${this.historyLimit} events)`,
      );
    }
    return ev.writes.map((w) => {
      const p = ev.prev.find((x) => x.key === w.key);
      if (!p) throw new Error(`cannot revert team event "${id}": it did not record the previous value of ${w.key}`);
      return { key: p.key, value: copyValue(p.value) };
    });
  }

  // ---- the team's view ---------------------------------------------------------------------------

  /**
   * The team's active set, sorted. A layer in a slot is active iff the slot names it (every slot,
   * if a malformed team file lists it in several); an unset slot names its first member in the
   * defaults. Other layers follow their register, or the defaults when it is unset. So at most one
   * layer per slot is ever active.
   */
  desiredActive(team: TeamFile): string[] {
    const out: string[] = [];
    for (const name of Object.keys(team.layers)) {
      const slots = slotsOf(team, name);
      const active = slots.length ? slots.every((s) => this.slotLayer(team, s) === name) : this.layerActive(team, name);
      if (active) out.push(name);
    }
    return out.sort();
  }

  /**
   * Writes for activating/deactivating team layers, honouring slots. Activating a slot's layer
   * writes slot:S={layer}; deactivating the slot's current layer writes slot:S={layer:null} (a
   * layer not current in its slot is already inactive: no write); other layers write layer:NAME.
   * A swap within a slot is one slot write. Throws for a layer not in the team file, a layer both
   * activated and deactivated, or two layers of one slot activated together (E_TEAM_SLOT: the
   * user's mistake). May return [] (nothing to do): do not make an event of that.
   */
  writesFor(team: TeamFile, op: { activate?: string[]; deactivate?: string[]; swap?: [string, string] }): RegisterWrite[] {
    const act = [...(op.activate ?? [])];
    const deact = [...(op.deactivate ?? [])];
    if (op.swap) {
      const [from, to] = op.swap;
      if (from === to) throw new Error(`cannot swap "${from}" with itself`);
      deact.push(from);
      act.push(to);
    }
    for (const n of [...act, ...deact]) {
      if (typeof n !== 'string' || !has(team.layers, n)) throw new Error(`"${n}" is not a layer of team ${team.team}`);
    }
    for (const n of act) if (deact.includes(n)) throw new Error(`cannot activate and deactivate "${n}" at once`);
    const claimed = new Map<string, string>();
    for (const n of new Set(act)) {
      for (const s of slotsOf(team, n)) {
        const other = claimed.get(s);
        if (other !== undefined) {
          throw new StrataError(
            'E_TEAM_SLOT',
            `"${other}" and "${n}" are both in slot ${s}: only one of them can be active`,
            `Name one layer of slot ${s}.`,
          );
        }
        claimed.set(s, n);
      }
    }
    const writes = new Map<string, RegisterValue>();
    for (const n of deact) {
      const slots = slotsOf(team, n);
      if (!slots.length) writes.set(`layer:${n}`, { active: false });
      for (const s of slots) if (this.slotLayer(team, s) === n) writes.set(`slot:${s}`, { layer: null });
    }
    for (const n of act) {
      const slots = slotsOf(team, n);
      if (!slots.length) writes.set(`layer:${n}`, { active: true });
      for (const s of slots) writes.set(`slot:${s}`, { layer: n });
    }
    return [...writes].map(([key, value]) => ({ key, value }));
  }

  // ---- persistence ------------------------------------------------------------------------------

  /** Everything needed to persist: registers, seen (with out-of-order seqs), own seq, history, clock. */
  toJSON(): TeamStateFile {
    return {
      format: TEAM_STATE_FORMAT,
      self: this.selfId,
      seq: this.ownSeq,
      clock: this.clock.last(),
      registers: this.snapshot({ maxEvents: 0 }).registers,
      seen: this.seen.toJSON(),
      history: this.history(),
    };
  }

  /** Rebuild from a saved state that statefile.ts has checked. */
  static restore(clock: HlcClock, saved: TeamStateFile, opts: TeamStateOptions = {}): TeamState {
    const st = new TeamState(saved.self, clock, opts);
    // Our own persisted timestamp is trusted; stored remote tags pass the drift guard again, as
    // they did on arrival (a peer's absurd wall must not enter the clock through a restart).
    clock.restore(saved.clock);
    for (const [k, r] of Object.entries(saved.registers)) {
      clock.observe(r.tag);
      st.registers.set(k, { value: copyValue(r.value), tag: copyTag(r.tag) });
    }
    for (const [origin, e] of Object.entries(saved.seen)) st.seen.restore(origin, e);
    for (const ev of saved.history) {
      clock.observe(ev.tag);
      st.record(ev);
    }
    st.ownSeq = saved.seq;
    return st;
  }
}
