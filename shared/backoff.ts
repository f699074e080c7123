/**
 * Reconnect delays: exponential with full jitter (a random delay between 0 and the capped
 * exponential bound), so peers that lost a relay together do not come back in lockstep.
 */
export interface BackoffOptions {
  /** First bound in ms (default 250). */
  baseMs?: number;
  /** Largest bound in ms (default 10 000). */
  capMs?: number;
  /** [0, 1) source (default Math.random); inject for tests. */
  random?: () => number;
}

export class Backoff {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;
  private n = 0;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 250;
    this.capMs = opts.capMs ?? 10_000;
    this.random = opts.random ?? Math.random;
    if (!(this.baseMs > 0) || !Number.isFinite(this.baseMs)) throw new Error(`Backoff: baseMs must be positive, got ${this.baseMs}`);
    if (!(this.capMs >= this.baseMs) || !Number.isFinite(this.capMs))
      throw new Error(`Backoff: capMs must be at least baseMs, got ${this.capMs}`);
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.n;
  }

  /** The bound for the current attempt: min(cap, base * 2^attempt). */
  bound(): number {
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.n, 1024));
  }

  /** The next delay in ms, in [0, bound()]; advances the attempt. */
  next(): number {
    const bound = this.bound();
    const r = Math.min(Math.max(this.random(), 0), 1);
    this.n++;
    return Math.floor(r * bound);
  }

  /** After a connection that worked. */
  reset(): void {
    this.n = 0;
  }
}
