/**
 * The decisions a replica keeps for `team history`, revert and catching peers up: the newest
 * `limit` by tag, each once (by origin and seq). Pure.
 */
import { Hlc, RegisterValue, RegisterWrite, TeamEvent, eventId } from '../../protocol/team';
import { compareHlc } from './hlc';

export function copyValue(v: RegisterValue): RegisterValue {
  return 'active' in v ? { active: v.active } : { layer: v.layer };
}

export function copyTag(t: Hlc): Hlc {
  return { wall: t.wall, logical: t.logical, agent: t.agent };
}

export function copyWrites(ws: RegisterWrite[]): RegisterWrite[] {
  return ws.map((w) => ({ key: w.key, value: copyValue(w.value) }));
}

export function copyEvent(ev: TeamEvent): TeamEvent {
  const out: TeamEvent = {
    origin: ev.origin,
    seq: ev.seq,
    tag: copyTag(ev.tag),
    writes: copyWrites(ev.writes),
    user: ev.user,
    host: ev.host,
    prev: copyWrites(ev.prev),
    key: ev.key,
    sig: ev.sig,
  };
  if (ev.reverts !== undefined) out.reverts = ev.reverts;
  return out;
}

/** Oldest first: by tag, then origin, then seq. */
export function compareEvents(a: TeamEvent, b: TeamEvent): number {
  const c = compareHlc(a.tag, b.tag);
  if (c !== 0) return c;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return a.seq - b.seq;
}

export class History {
  /** Sorted by compareEvents: oldest first. */
  private events: TeamEvent[] = [];
  private readonly byId = new Map<string, TeamEvent>();

  constructor(readonly limit: number) {}

  /** Keep a copy of ev; true if it is new here and among the newest `limit`. */
  record(ev: TeamEvent): boolean {
    const id = eventId(ev);
    if (this.byId.has(id)) return false;
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
    while (list.length > this.limit) this.byId.delete(eventId(list.shift()!));
    return this.byId.has(id);
  }

  /** The event with this id, as kept (not a copy: callers must not change it). */
  get(id: string): TeamEvent | undefined {
    return this.byId.get(id);
  }

  all(): readonly TeamEvent[] {
    return this.events;
  }
}
