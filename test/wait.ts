/** Waiting for a condition in tests: poll until `fn` gives a truthy value, or fail naming `what`. */
export type Maybe<T> = T | null | undefined | false;

/** `what` may be a function, to describe the state at the time of the failure. */
export async function eventually<T>(what: string | (() => string), fn: () => Maybe<T> | Promise<Maybe<T>>, ms = 15000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > ms)
      throw new Error(
        `timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
