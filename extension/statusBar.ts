/**
 * One status bar item: the active layers and the team's sync state when connected
 * ("$(layers) node20 · $(sync) team 3/4"), a warning that starts the agent when it is down.
 */
import * as vscode from 'vscode';
import { AgentStatus, TeamStatus } from '../protocol';
import { COMMANDS } from './constants';
import { Ctx, Health } from './ctx';

interface Look {
  text: string;
  command: string;
  tooltip: string;
  warning: boolean;
}

/** Pure: what the item shows for a health, status and team status. */
export function statusLook(health: Health, status: AgentStatus | null, team: TeamStatus | null, downReason = ''): Look {
  if (health === 'connecting')
    return { text: '$(sync~spin) Strata', command: COMMANDS.showLog, tooltip: 'Connecting to the Strata agent…', warning: false };
  if (health === 'down' || !status) {
    return {
      text: '$(warning) Strata agent down',
      command: COMMANDS.startAgent,
      tooltip: `The Strata agent is not running${downReason ? ` (${downReason})` : ''}. Click to start it.`,
      warning: true,
    };
  }
  let text = `$(layers) ${status.active.join(', ') || 'no layers'}`;
  const tip = [
    `Active layers: ${status.active.join(', ') || 'none'}`,
    `Views: ${status.views.map((v) => v.mountpoint).join(', ') || 'none'}`,
  ];
  if (team?.joined) {
    const d = team.lastDecision;
    const drift = team.drift?.length ? ` $(warning)` : '';
    text += d ? ` · $(sync) team ${d.applied}/${d.of}${drift}` : ` · $(sync) team${drift}`;
    tip.push(
      `Team ${team.team}: ${(team.peers ?? []).filter((p) => p.connection !== 'gone').length} peer(s) present${d ? `, last decision applied on ${d.applied} of ${d.of}` : ''}`,
    );
    if (team.drift?.length) tip.push(`Drift here: ${team.drift.join(' ')}`);
  }
  tip.push('Click to activate or deactivate a layer.');
  return { text, command: COMMANDS.activateLayer, tooltip: tip.join('\n'), warning: false };
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('strata.status', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;

  constructor(private readonly ctx: Ctx) {
    this.item.name = 'Strata';
    this.sub = ctx.onDidChange(() => this.render());
    this.render();
    this.item.show();
  }

  get text(): string {
    return this.item.text;
  }

  private render(): void {
    const look = statusLook(this.ctx.health, this.ctx.status, this.ctx.team, this.ctx.downReason);
    this.item.text = look.text;
    this.item.command = look.command;
    this.item.tooltip = look.tooltip;
    this.item.backgroundColor = look.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
