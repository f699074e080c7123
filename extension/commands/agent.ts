/** Agent commands: start, restart, refresh, its log, and adding views. */
import * as fs from 'fs';
import * as vscode from 'vscode';
import { logFile } from '../../shared/client';
import { COMMANDS } from '../constants';
import { Ctx } from '../ctx';
import { refuseUntrustedSource } from '../trust';
import { CommandSpec } from './table';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Wait until the old agent has unmounted its views and exited, so the new one mounts cleanly. */
async function exited(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

export function agentCommands(ctx: Ctx): CommandSpec[] {
  const log = ctx.log.for('agent');
  const start = (): Thenable<void> =>
    vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Starting the Strata agent' }, () => ctx.startAgent());

  return [
    {
      id: COMMANDS.showLog,
      title: 'Show Agent Log',
      needsAgent: false,
      run: async () => {
        ctx.log.show();
        const file = logFile(ctx.where.home);
        if (fs.existsSync(file)) await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true, preserveFocus: true });
      },
    },
    {
      id: COMMANDS.startAgent,
      title: 'Start Agent',
      needsAgent: false,
      run: async () => {
        if (ctx.connected) {
          void vscode.window.showInformationMessage(`Strata: the agent is running (pid ${ctx.status?.pid}).`);
          return;
        }
        await start();
      },
    },
    {
      id: COMMANDS.restartAgent,
      title: 'Restart Agent',
      needsAgent: false,
      run: async () => {
        const pid = ctx.status?.pid;
        if (ctx.connected && pid) {
          log.info(`stopping the agent (pid ${pid})`);
          // The views keep serving across the restart: terminals and editors inside them go on working.
          await ctx.call('agent.stop', { keepViews: true });
          if (!(await exited(pid, 20000))) throw new Error(`the agent (pid ${pid}) did not stop within 20 s`);
          for (let i = 0; ctx.connected && i < 40; i++) await new Promise((r) => setTimeout(r, 50));
        }
        await start();
        log.info(`agent running (pid ${ctx.status?.pid})`);
      },
    },
    {
      id: COMMANDS.refresh,
      title: 'Refresh',
      needsAgent: false,
      run: () => ctx.refresh(),
    },
    {
      id: COMMANDS.addView,
      title: 'Add View…',
      needsAgent: true,
      run: async (arg) => {
        const base =
          (arg instanceof vscode.Uri ? arg : undefined)?.fsPath ??
          (
            await vscode.window.showOpenDialog({
              title: 'Add View: the base folder to serve',
              canSelectFolders: true,
              canSelectFiles: false,
              openLabel: 'Serve Folder',
              defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
            })
          )?.[0]?.fsPath;
        if (!base) return undefined;
        refuseUntrustedSource(base);
        const how = await vscode.window.showQuickPick(
          [
            { label: '$(root-folder) In place', description: `over ${base} itself`, inPlace: true },
            { label: '$(folder-opened) At another folder…', description: 'an empty folder outside the base', inPlace: false },
          ],
          { title: `Add View of ${base}` },
        );
        if (!how) return undefined;
        let at: string | undefined;
        if (!how.inPlace) {
          at = (
            await vscode.window.showOpenDialog({
              title: 'Add View: the mountpoint',
              canSelectFolders: true,
              canSelectFiles: false,
              openLabel: 'Mount Here',
            })
          )?.[0]?.fsPath;
          if (!at) return undefined;
        }
        const v = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `Strata: mounting a view of ${base}…` },
          () => ctx.call('view.add', { base, ...(at ? { at } : {}) }),
        );
        log.info(`view of ${v.base} at ${v.mountpoint}: ${v.state}`);
        return v;
      },
    },
  ];
}
