/**
 * A token bucket: `burst` tokens at most, refilled at `ratePerSec`. Used to cap frames per peer.
 * Time comes from an injected clock; a clock going backwards refills nothing.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) throw new Error(`TokenBucket: ratePerSec must be positive, got ${ratePerSec}`);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new Error(`TokenBucket: burst must be at least 1, got ${burst}`);
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    // Refills stop at the burst; tokens above it (a credit) are left until spent.
    if (t > this.last && this.tokens < this.burst)
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.ratePerSec) / 1000);
    this.last = t;
  }

  /**
   * n tokens more, for a burst that is expected (a peer catching this node up). Credits do not
   * stack: at most n above the burst, however often this node asks.
   */
  credit(n: number): void {
    this.refill();
    this.tokens = Math.min(this.tokens + n, this.burst + n);
  }

  /** Take n tokens (default 1) if there are that many; false (and nothing taken) otherwise. */
  take(n = 1): boolean {
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Tokens available now (for tests and logs). */
  available(): number {
    this.refill();
    return this.tokens;
  }
}
