/**
 * Frames dropped for what they claim are logged with their reason, but a peer sending thousands
 * must not flood agent.log: at most `burst` lines per `windowMs`, then one line counting the rest.
 */
export class RefusalLog {
  private windowStart = 0;
  private lines = 0;
  private suppressed = 0;
  /** Every refusal since start, logged or not (for tests and status). */
  total = 0;

  constructor(
    private readonly log: (m: string) => void,
    private readonly burst = 20,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  refuse(what: string, why: string): void {
    this.total++;
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed)
        this.log(`[team] refused ${this.suppressed} more frames in the last ${Math.round((t - this.windowStart) / 1000)} s`);
      this.windowStart = t;
      this.lines = 0;
      this.suppressed = 0;
    }
    if (this.lines < this.burst) {
      this.lines++;
      this.log(`[team] refused ${what}: ${why}`);
    } else {
      this.suppressed++;
    }
  }
}
