/** Runs one of our node entry points attached to this terminal: signals forwarded, its exit status ours. */
import { spawn } from 'child_process';

export function runForeground(
  script: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; onMessage?: (m: unknown) => void } = {},
): Promise<number> {
  // With an IPC channel the child also learns when we are gone, even after a SIGKILL.
  const child = spawn(process.execPath, [script, ...args], {
    stdio: opts.onMessage ? ['inherit', 'inherit', 'inherit', 'ipc'] : 'inherit',
    env: opts.env ?? process.env,
  });
  if (opts.onMessage) child.on('message', opts.onMessage);
  const forward = (sig: NodeJS.Signals) => () => void child.kill(sig);
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGTERM', forward('SIGTERM'));
  return new Promise((res, rej) => {
    child.once('error', rej);
    child.once('exit', (code) => res(code ?? 1));
  });
}
