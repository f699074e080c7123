/**
 * Runs `fn` at most once per `ms`: a call within that time is put off to its end, and several
 * such calls make one run (a burst of changes is one announcement, sent when it ends).
 */
export class Throttle {
  private last = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ms: number,
    private readonly fn: () => void,
  ) {}

  /** Run now if the time is up (or `now`), else once when it is. */
  run(now = false): void {
    const wait = this.last + this.ms - Date.now();
    if (wait > 0 && !now) {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.run();
      }, wait);
      return;
    }
    this.last = Date.now();
    this.fn();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
