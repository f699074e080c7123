/**
 * Long requests (capture, export, import) on stderr: the agent's progress events for the task, the
 * first of which says the request was accepted, as a percentage and bytes. On a terminal one line
 * is rewritten; otherwise a line is printed every 10% and for every new step.
 */
import { ProgressEvent } from '../protocol';
import { AgentClient } from '../shared/client';

export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let u = -1;
  do {
    n /= 1000;
    u++;
  } while (n >= 1000 && u < units.length - 1);
  return `${n.toFixed(1)} ${units[u]}`;
}

/** Runs `work` on `c` while showing the progress of `task`; `accepted` runs at its first event. */
export async function withProgress<T>(c: AgentClient, task: string, accepted: () => void, work: () => Promise<T>): Promise<T> {
  const tty = process.stderr.isTTY;
  let started = false;
  let open = false; // a rewritten line is on screen
  let lastMessage = '';
  let lastStep = -1;
  const write = (line: string, rewrite: boolean) => {
    if (tty && rewrite) {
      process.stderr.write(`\r\x1b[K${line}`);
      open = true;
      return;
    }
    process.stderr.write(`${open ? '\n' : ''}${line}\n`);
    open = false;
  };
  const show = (e: ProgressEvent) => {
    if (!started) {
      started = true;
      accepted();
    }
    const newStep = e.message !== lastMessage;
    lastMessage = e.message;
    if (!e.total) {
      write(`  ${e.message}`, false);
      return;
    }
    const done = Math.min(e.done ?? 0, e.total);
    const pct = Math.floor((done / e.total) * 100);
    const line = `  ${String(pct).padStart(3)}% ${bytes(done)} of ${bytes(e.total)}: ${e.message}`;
    if (tty) return write(line, true);
    const step = Math.floor(pct / 10);
    if (newStep || step > lastStep) write(line, false);
    lastStep = newStep ? step : Math.max(step, lastStep);
  };
  c.onEvent = (e) => {
    if (e.event === 'progress' && e.task === task) show(e);
  };
  await c.call('subscribe', {});
  try {
    return await work();
  } finally {
    c.onEvent = () => {};
    if (open) process.stderr.write('\n');
  }
}
