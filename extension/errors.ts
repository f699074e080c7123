/**
 * Errors for people and for the log: the user sees one line with the agent's hint and an action;
 * the log gets the code and the detail. Notifications are never awaited by the caller, so a
 * command finishes even when nobody clicks.
 */
import * as vscode from 'vscode';
import { ErrorCode } from '../protocol';
import { StrataError } from '../shared/errors';
import { COMMANDS } from './constants';
import { Logger } from './log';

export interface Action {
  title: string;
  run(): unknown;
}

export function errorCode(e: unknown): ErrorCode | undefined {
  return e instanceof StrataError ? e.code : undefined;
}

/** The message and, when the agent gave one, its hint. */
export function formatError(e: unknown): string {
  if (e instanceof StrataError) return e.hint ? `${e.message}. ${e.hint}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

export interface Notice {
  kind: 'error' | 'warning' | 'info';
  message: string;
  actions: Action[];
  at: number;
}

const recent: Notice[] = [];

/** The last notifications shown (newest last), for the extension-host tests: they cannot read the workbench's toasts. */
export function recentNotices(): readonly Notice[] {
  return recent;
}

export function showActions(kind: 'error' | 'warning' | 'info', message: string, actions: Action[]): void {
  recent.push({ kind, message, actions, at: Date.now() });
  if (recent.length > 50) recent.shift();
  const show =
    kind === 'error'
      ? vscode.window.showErrorMessage
      : kind === 'warning'
        ? vscode.window.showWarningMessage
        : vscode.window.showInformationMessage;
  void show(message, ...actions.map((a) => a.title)).then((picked) => actions.find((a) => a.title === picked)?.run());
}

const showLog: Action = { title: 'Show Log', run: () => vscode.commands.executeCommand(COMMANDS.showLog) };
const startAgent: Action = { title: 'Start Agent', run: () => vscode.commands.executeCommand(COMMANDS.startAgent) };

/** Log `e` in full and tell the user what failed, with the actions that can help. */
export function reportError(log: Logger, what: string, e: unknown, actions: Action[] = []): void {
  const code = errorCode(e);
  log.error(`${what} failed${code ? ` (${code})` : ''}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  const extra = code === 'E_AGENT_UNAVAILABLE' ? [startAgent] : [];
  showActions('error', `Strata: ${what} failed: ${formatError(e)}`, [...actions, ...extra, showLog]);
}

/** The agent is down: say so, offer to start it. */
export function reportAgentDown(what: string): void {
  showActions('error', `Strata: ${what} needs the Strata agent, which is not running.`, [startAgent, showLog]);
}
