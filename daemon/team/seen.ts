/**
 * Which events (origin, seq) a replica has seen, for exact dedupe under reordering and
 * duplication. Per origin: every seq up to `upTo`, plus the out-of-order ones above it.
 */
export interface SeenEntry {
  upTo: number;
  /** Seqs seen beyond a gap, all > upTo + 1. */
  above: Set<number>;
}

export class SeenSet {
  private readonly byOrigin = new Map<string, SeenEntry>();

  has(origin: string, seq: number): boolean {
    const e = this.byOrigin.get(origin);
    return !!e && (seq <= e.upTo || e.above.has(seq));
  }

  /** Record (origin, seq) as seen; false if it already was. */
  mark(origin: string, seq: number): boolean {
    const e = this.entry(origin);
    if (seq <= e.upTo || e.above.has(seq)) return false;
    if (seq === e.upTo + 1) {
      e.upTo = seq;
      while (e.above.delete(e.upTo + 1)) e.upTo++;
    } else {
      e.above.add(seq);
    }
    return true;
  }

  /** Everything from origin up to n was seen (a peer's registers hold their effects). */
  markUpTo(origin: string, n: number): void {
    const e = this.entry(origin);
    if (n <= e.upTo) return;
    e.upTo = n;
    for (const s of e.above) if (s <= n) e.above.delete(s);
    while (e.above.delete(e.upTo + 1)) e.upTo++;
  }

  /** Highest contiguous seq per origin (the "applied" vector sent in presence). */
  vector(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const origin of [...this.byOrigin.keys()].sort()) {
      const n = this.byOrigin.get(origin)!.upTo;
      if (n > 0) out[origin] = n;
    }
    return out;
  }

  /** The highest seq seen from origin, gaps or not (0 if none). */
  highest(origin: string): number {
    const e = this.byOrigin.get(origin);
    if (!e) return 0;
    let top = e.upTo;
    for (const s of e.above) if (s > top) top = s;
    return top;
  }

  /** The persisted form, sorted. */
  toJSON(): Record<string, { upTo: number; above: number[] }> {
    const out: Record<string, { upTo: number; above: number[] }> = {};
    for (const origin of [...this.byOrigin.keys()].sort()) {
      const e = this.byOrigin.get(origin)!;
      out[origin] = { upTo: e.upTo, above: [...e.above].sort((a, b) => a - b) };
    }
    return out;
  }

  /** Restore one origin's entry from the persisted form. */
  restore(origin: string, saved: { upTo: number; above: number[] }): void {
    const e: SeenEntry = { upTo: saved.upTo, above: new Set(saved.above) };
    while (e.above.delete(e.upTo + 1)) e.upTo++;
    this.byOrigin.set(origin, e);
  }

  private entry(origin: string): SeenEntry {
    let e = this.byOrigin.get(origin);
    if (!e) this.byOrigin.set(origin, (e = { upTo: 0, above: new Set() }));
    return e;
  }
}
