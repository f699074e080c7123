/**
 * Commands come from a table. Each entry says whether it needs the agent (without it, the command
 * says the agent is down and offers to start it, instead of failing obscurely) and whether it
 * needs a trusted workspace. Failures are logged and shown with an action; nothing here waits on a
 * notification, so a command's promise settles when its work does.
 */
import * as vscode from 'vscode';
import { CommandId } from '../constants';
import { Ctx } from '../ctx';
import { reportAgentDown, reportError } from '../errors';

export interface CommandSpec {
  id: CommandId;
  /** As package.json titles it; used in messages. */
  title: string;
  needsAgent: boolean;
  needsTrust?: boolean;
  run(...args: unknown[]): unknown;
}

export function registerCommands(ctx: Ctx, specs: readonly CommandSpec[]): void {
  const log = ctx.log.for('commands');
  for (const spec of specs) {
    const what = spec.title.replace(/…$/, '');
    ctx.own(
      vscode.commands.registerCommand(spec.id, async (...args: unknown[]) => {
        if (spec.needsTrust && !vscode.workspace.isTrusted) {
          void vscode.window.showWarningMessage(
            `Strata: ${what} is not available in an untrusted workspace. Trust the workspace to use it.`,
          );
          return undefined;
        }
        if (spec.needsAgent && !ctx.connected) {
          reportAgentDown(what);
          return undefined;
        }
        try {
          return await spec.run(...args);
        } catch (e) {
          reportError(log, what, e);
          return undefined;
        }
      }),
    );
  }
}
