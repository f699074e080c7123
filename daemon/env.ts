/** Settings the agent reads from its environment. */

/**
 * The whole number in variable `name`, or undefined when it is unset or empty; anything else is
 * an error naming the variable (`zero` says what 0 does there).
 */
export function wholeFromEnv(env: NodeJS.ProcessEnv, name: string, zero: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${text}: expected a whole number (0 ${zero})`);
  return n;
}
