/**
 * Long work the agent reports with ProgressEvents (layer pulls from teammates, imports): one
 * notification per task, fed by its events, closed when the work says it is done or goes quiet.
 * Lives as long as one agent connection: a lost connection ends every notification.
 */
import * as vscode from 'vscode';
import { ProgressEvent } from '../protocol';
import { Logger } from './log';

export type { Step as ProgressStep };

/** A task with no event for this long is over (pull events come per chunk, i.e. often). */
const QUIET_MS = 5000;
const DONE = /\b(imported|created|verified|failed)\b/;

type Step = { message?: string; increment?: number };

interface Task {
  /** Set once VS Code runs the progress callback; steps before that wait in `pending`. */
  report: vscode.Progress<Step> | null;
  pending: Step[];
  finish: () => void;
  percent: number;
  timer: NodeJS.Timeout;
}

export class ProgressTracker implements vscode.Disposable {
  private readonly tasks = new Map<string, Task>();
  /** Tasks a command shows in its own notification (an import it started): one notification, not two. */
  private readonly claimed = new Map<string, vscode.Progress<Step>>();

  constructor(private readonly log: Logger) {}

  /** Send the events of `task` to `report` instead of a notification of their own, until disposed. */
  claim(task: string, report: vscode.Progress<Step>): vscode.Disposable {
    this.claimed.set(task, report);
    return { dispose: () => this.claimed.get(task) === report && this.claimed.delete(task) };
  }

  handle(e: ProgressEvent): void {
    this.log.info(`${e.task}: ${e.message}${e.total ? ` (${e.done ?? 0}/${e.total})` : ''}`);
    const claimed = this.claimed.get(e.task);
    if (claimed) {
      claimed.report({ message: e.message });
      return;
    }
    const task = this.tasks.get(e.task) ?? this.begin(e.task);
    const percent = e.total ? Math.min(100, Math.floor(((e.done ?? 0) / e.total) * 100)) : task.percent;
    const step = { message: e.message, increment: Math.max(0, percent - task.percent) };
    if (task.report) task.report.report(step);
    else task.pending.push(step);
    task.percent = percent;
    clearTimeout(task.timer);
    const over = DONE.test(e.message) || (e.total !== undefined && e.done !== undefined && e.done >= e.total);
    task.timer = setTimeout(() => this.end(e.task), over ? 1000 : QUIET_MS);
  }

  private begin(name: string): Task {
    let finish: () => void = () => {};
    const over = new Promise<void>((r) => (finish = r));
    const task: Task = { report: null, pending: [], finish, percent: 0, timer: setTimeout(() => this.end(name), QUIET_MS) };
    void vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Strata: ${name}` }, (report) => {
      task.report = report;
      for (const step of task.pending.splice(0)) report.report(step);
      return over;
    });
    this.tasks.set(name, task);
    return task;
  }

  private end(name: string): void {
    const t = this.tasks.get(name);
    if (!t) return;
    clearTimeout(t.timer);
    this.tasks.delete(name);
    t.finish();
  }

  dispose(): void {
    for (const name of [...this.tasks.keys()]) this.end(name);
  }
}
