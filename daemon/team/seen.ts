/**
 * Which events (origin, seq) a replica has seen, for exact dedupe under reordering and
 * duplication. Per origin: every seq up to `upTo`, plus the out-of-order ones above it.
 *
 * Bounded, whatever senders claim: at most `maxAbove` seqs beyond a gap per origin (past that the
 * gap is given up: its events, if they ever come, count as seen; the registers do not depend on
 * it, see state.ts), and at most `maxOrigins` origins, the least recently active forgotten first
 * (never `self`).
 */
export interface SeenEntry {
  upTo: number;
  /** Seqs seen beyond a gap, all > upTo + 1. */
  above: Set<number>;
}

export interface SeenOptions {
  self?: string;
  maxOrigins?: number;
  maxAbove?: number;
}

export class SeenSet {
  /** Least recently active first. */
  private readonly byOrigin = new Map<string, SeenEntry>();
  private readonly maxOrigins: number;
  private readonly maxAbove: number;
  /** Origins forgotten to stay within maxOrigins (for logs). */
  evicted = 0;

  constructor(private readonly o: SeenOptions = {}) {
    this.maxOrigins = o.maxOrigins ?? Infinity;
    this.maxAbove = o.maxAbove ?? 64;
  }

  get size(): number {
    return this.byOrigin.size;
  }

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
      if (e.above.size > this.maxAbove) {
        e.upTo = Math.min(...e.above) - 1;
        while (e.above.delete(e.upTo + 1)) e.upTo++;
      }
    }
    return true;
  }

  /** Everything from origin up to n was seen (a peer's registers hold their effects). */
  markUpTo(origin: string, n: number): void {
    if (!this.byOrigin.has(origin)) return; // only close gaps of origins this replica knows
    const e = this.entry(origin);
    if (n <= e.upTo) return;
    e.upTo = n;
    for (const s of e.above) if (s <= n) e.above.delete(s);
    while (e.above.delete(e.upTo + 1)) e.upTo++;
  }

  /** Highest contiguous seq per origin (the "applied" vector sent in presence); with `limit`, of the most recently active only. */
  vector(limit = Infinity): Record<string, number> {
    const out: Record<string, number> = {};
    const origins = [...this.byOrigin.keys()];
    for (const origin of origins.slice(Math.max(0, origins.length - limit)).sort()) {
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

  /** The persisted form: origins least recently active first, seqs sorted. */
  toJSON(): Record<string, { upTo: number; above: number[] }> {
    const out: Record<string, { upTo: number; above: number[] }> = {};
    for (const origin of this.byOrigin.keys()) {
      const e = this.byOrigin.get(origin)!;
      out[origin] = { upTo: e.upTo, above: [...e.above].sort((a, b) => a - b) };
    }
    return out;
  }

  /** Restore one origin's entry from the persisted form (call in the persisted order). */
  restore(origin: string, saved: { upTo: number; above: number[] }): void {
    const e: SeenEntry = { upTo: saved.upTo, above: new Set(saved.above) };
    while (e.above.delete(e.upTo + 1)) e.upTo++;
    this.byOrigin.delete(origin);
    this.byOrigin.set(origin, e);
    this.evict();
  }

  /** The entry of origin, made most recently active. */
  private entry(origin: string): SeenEntry {
    let e = this.byOrigin.get(origin);
    if (e) this.byOrigin.delete(origin);
    else e = { upTo: 0, above: new Set() };
    this.byOrigin.set(origin, e);
    this.evict();
    return e;
  }

  private evict(): void {
    if (this.byOrigin.size <= this.maxOrigins) return;
    for (const origin of this.byOrigin.keys()) {
      if (this.byOrigin.size <= this.maxOrigins) break;
      if (origin === this.o.self) continue;
      this.byOrigin.delete(origin);
      this.evicted++;
    }
  }
}
