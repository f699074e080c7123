/**
 * What still runs the old toolchain after a switch. The agent names the processes holding files the
 * switch replaced; this says who each one is (a language server of VS Code, a task, a job in a
 * terminal, something else) and how to restart it: a server through its extension's own restart
 * command (offered only when that command exists), a task by running it again. The rest is listed
 * with its pid and command line.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { StaleHolder } from '../../protocol';
import { Logger } from '../log';
import { ProcInfo, ReadProc, ancestry, commandLine, knownServer, readProc } from './procs';

export type StaleKind = 'server' | 'task' | 'extension' | 'terminal' | 'other';

export interface StaleProcess {
  pid: number;
  /** Its command line. */
  command: string;
  /** The files it holds that the switch replaced. */
  files: string[];
  /** Where those files came from: layers, and null for the base folder. */
  from: (string | null)[];
  kind: StaleKind;
  /** Who it is: "TypeScript server", 'task "watch"', 'a job in terminal "bash"', "sleep". */
  label: string;
  /** How VS Code can restart it, when it can. */
  restart?: { how: string; run(): Thenable<unknown> };
}

export class StaleProcesses implements vscode.Disposable {
  /** Task executions by the pid of their process (the shell or the program a task runs). */
  private readonly tasks = new Map<number, vscode.TaskExecution>();
  private readonly subs: vscode.Disposable[];

  constructor(
    private readonly log: Logger,
    private readonly read: ReadProc = readProc,
  ) {
    this.subs = [
      vscode.tasks.onDidStartTaskProcess((e) => this.tasks.set(e.processId, e.execution)),
      vscode.tasks.onDidEndTaskProcess((e) => {
        for (const [pid, x] of this.tasks) if (x === e.execution) this.tasks.delete(pid);
      }),
    ];
  }

  /** Who the holders are, one entry per process. */
  async identify(holders: readonly StaleHolder[]): Promise<StaleProcess[]> {
    const byPid = new Map<number, StaleHolder[]>();
    for (const h of holders) byPid.set(h.pid, [...(byPid.get(h.pid) ?? []), h]);
    if (!byPid.size) return [];
    const commands = new Set(await vscode.commands.getCommands(true));
    const terminals = new Map<number, vscode.Terminal>();
    for (const t of vscode.window.terminals) {
      const pid = await t.processId;
      if (pid) terminals.set(pid, t);
    }
    const out: StaleProcess[] = [];
    for (const [pid, held] of byPid) {
      const chain = ancestry(pid, this.read);
      const base: StaleProcess = {
        pid,
        command: commandLine(chain[0], held[0].command),
        files: [...new Set(held.map((h) => h.path))],
        from: [...new Set(held.map((h) => h.layer))],
        kind: 'other',
        label: programName(chain[0], held[0].command),
      };
      out.push(this.classify(base, chain, commands, terminals));
    }
    return out;
  }

  private classify(p: StaleProcess, chain: ProcInfo[], commands: Set<string>, terminals: Map<number, vscode.Terminal>): StaleProcess {
    const task = chain.map((c) => this.tasks.get(c.pid)).find((x) => x !== undefined);
    if (task) {
      return { ...p, kind: 'task', label: `task "${task.task.name}"`, restart: { how: 'run the task again', run: () => rerun(task) } };
    }
    const server = knownServer(chain, process.pid);
    if (server) {
      const command = server.commands.find((c) => commands.has(c));
      return {
        ...p,
        kind: 'server',
        label: server.name,
        ...(command ? { restart: { how: `run ${command}`, run: () => vscode.commands.executeCommand(command) } } : {}),
      };
    }
    if (chain.some((c) => c.pid === process.pid)) return { ...p, kind: 'extension', label: `${p.label} (started by an extension)` };
    const term = chain.map((c) => terminals.get(c.pid)).find((t) => t !== undefined);
    if (term) return { ...p, kind: 'terminal', label: `${p.label} in terminal "${term.name}"` };
    return p;
  }

  /** Say which processes still run the old files, offer to restart those VS Code can restart, and log them all. */
  report(procs: readonly StaleProcess[], show: (message: string, actions: { title: string; run(): unknown }[]) => void): void {
    if (!procs.length) return;
    for (const p of procs) {
      this.log.info(
        `still running the old ${fromWords(p.from)}: pid ${p.pid} (${p.command}) holds ${p.files.join(', ')} — ${p.label}${p.restart ? `; restart: ${p.restart.how}` : ''}`,
      );
    }
    const restartable = procs.filter((p) => p.restart);
    const named = procs
      .slice(0, 3)
      .map((p) => `${p.label} (pid ${p.pid})`)
      .join(', ');
    const more = procs.length > 3 ? ` and ${procs.length - 3} more` : '';
    const from = fromWords([...new Set(procs.flatMap((p) => p.from))]);
    const actions: { title: string; run(): unknown }[] = [];
    if (restartable.length) {
      actions.push({
        title: restartable.length === 1 ? `Restart ${restartable[0].label}` : `Restart ${restartable.length}`,
        run: () => this.restart(restartable),
      });
    }
    actions.push({ title: 'Show Processes', run: () => this.pick(procs) });
    show(
      `Strata: ${procs.length === 1 ? '1 process still runs' : `${procs.length} processes still run`} the old ${from}: ${named}${more}.`,
      actions,
    );
  }

  async restart(procs: readonly StaleProcess[]): Promise<void> {
    for (const p of procs) {
      if (!p.restart) continue;
      this.log.info(`restarting ${p.label} (pid ${p.pid}): ${p.restart.how}`);
      try {
        await p.restart.run();
      } catch (e) {
        this.log.warn(`restarting ${p.label} failed: ${(e as Error).message}`);
      }
    }
  }

  private async pick(procs: readonly StaleProcess[]): Promise<void> {
    const picked = await vscode.window.showQuickPick(
      procs.map((p) => ({
        label: `${p.restart ? '$(debug-restart)' : '$(circle-outline)'} ${p.label}`,
        description: `pid ${p.pid}${p.restart ? ` · pick to restart (${p.restart.how})` : ''}`,
        detail: `${p.command} — holds ${p.files.join(', ')}`,
        p,
      })),
      { title: `Processes still running the old ${fromWords([...new Set(procs.flatMap((p) => p.from))])}`, matchOnDetail: true },
    );
    if (picked?.p.restart) await this.restart([picked.p]);
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}

/** "tool-3", "tool-3 and gcc", "files of the base folder". */
function fromWords(from: readonly (string | null)[]): string {
  const names = from.map((f) => f ?? 'base folder');
  return names.length ? names.join(' and ') : 'files';
}

function programName(info: ProcInfo | undefined, fallback: string): string {
  const first = info?.argv[0];
  return first ? path.basename(first) : fallback;
}

/** End a task and run it again (after it has ended, so two copies never run at once). */
async function rerun(x: vscode.TaskExecution): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, 10000);
    const sub = vscode.tasks.onDidEndTask((e) => {
      if (e.execution === x) done();
    });
    function done(): void {
      clearTimeout(timer);
      sub.dispose();
      resolve();
    }
    x.terminate();
  });
  await vscode.tasks.executeTask(x.task);
}
