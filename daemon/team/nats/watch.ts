/** A bucket's one live KV watch, which a new watch replaces (after a reconnect, a stall). */
export interface Watch<T> extends AsyncIterable<T> {
  stop(): void;
}

export class Watching<T> {
  private current: Watch<T> | null = null;

  constructor(
    /** What is watched, for the log. */
    private readonly what: string,
    private readonly log: (m: string) => void,
    private readonly stopped: () => boolean,
  ) {}

  /** Stop the watch before and read `it` with `each` until it ends or is replaced; a failure is logged unless stopped. */
  follow(it: Watch<T>, each: (e: T) => void): void {
    this.current?.stop();
    this.current = it;
    void (async () => {
      for await (const e of it) {
        if (this.current !== it) break;
        each(e);
      }
    })().catch((e) => {
      if (!this.stopped()) this.log(`[team] watching ${this.what} stopped: ${(e as Error).message}`);
    });
  }

  stop(): void {
    this.current?.stop();
  }
}
