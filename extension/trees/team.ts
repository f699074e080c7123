/**
 * The Team view, from `team.status`: the team, how far the last decision got ("applied on 3 of 4"),
 * this machine's drift, the relays, and every peer with its connection, active set and drift.
 */
import * as vscode from 'vscode';
import { TeamPeerInfo, TeamStatus } from '../../protocol';
import { COMMANDS, ITEMS } from '../constants';
import { Ctx } from '../ctx';
import { CtxTree } from './base';

export class TeamItem extends vscode.TreeItem {
  constructor(label: string, description: string, contextValue: string, icon: string, tooltip?: string, colour?: string) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.description = description;
    this.contextValue = contextValue;
    this.iconPath = new vscode.ThemeIcon(icon, colour ? new vscode.ThemeColor(colour) : undefined);
    if (tooltip) this.tooltip = tooltip;
  }
}

export class PeerItem extends TeamItem {
  constructor(readonly peer: TeamPeerInfo) {
    const relay = peer.active === null;
    const parts = [peer.connection, relay ? 'relay' : peer.active!.join(', ') || 'no layers'];
    if (peer.drift.length) parts.push(`drift ${peer.drift.join(' ')}`);
    if (peer.held.length) parts.push(`holds ${peer.held.join(', ')}`);
    if (peer.busy.length) parts.push(`busy: ${peer.busy.join(', ')}`);
    const colour = peer.connection === 'gone' ? 'disabledForeground' : peer.drift.length ? 'list.warningForeground' : 'charts.green';
    super(
      `${peer.user}@${peer.host}`,
      parts.join(' · '),
      ITEMS.teamPeer,
      relay ? 'radio-tower' : 'person',
      `agent ${peer.agent}\nlast seen ${new Date(peer.lastSeen).toLocaleTimeString()}`,
      colour,
    );
    this.id = `peer:${peer.agent}`;
  }
}

export function teamItems(t: TeamStatus): TeamItem[] {
  if (!t.joined) {
    const item = new TeamItem('Not in a team', 'Join Team…', ITEMS.teamNotJoined, 'organization');
    item.command = { command: COMMANDS.joinTeam, title: 'Join Team…' };
    return [item];
  }
  const items: TeamItem[] = [
    new TeamItem(
      `Team ${t.team}`,
      `as ${t.agent}${t.listen ? ` · listening on ${t.listen}` : ''}`,
      ITEMS.teamHeader,
      'organization',
      t.teamFile,
    ),
  ];
  items.push(new TeamItem('Team layers active', (t.desired ?? []).join(', ') || 'none', ITEMS.teamInfo, 'layers'));
  if (t.lastDecision) {
    const d = t.lastDecision;
    items.push(
      new TeamItem(
        `Applied on ${d.applied} of ${d.of}`,
        `last decision ${d.id}`,
        ITEMS.teamDecision,
        d.applied === d.of ? 'check-all' : 'sync',
        undefined,
        d.applied === d.of ? 'charts.green' : undefined,
      ),
    );
  }
  if (t.drift?.length)
    items.push(
      new TeamItem(
        'Drift here',
        t.drift.join(' '),
        ITEMS.teamInfo,
        'warning',
        'Team layers this machine runs differently from the team (held layers included)',
        'list.warningForeground',
      ),
    );
  for (const p of t.pulling ?? [])
    items.push(
      new TeamItem(`Pulling ${p.layer}`, p.total ? `${Math.floor((p.done / p.total) * 100)}%` : '', ITEMS.teamInfo, 'cloud-download'),
    );
  for (const r of t.relays ?? [])
    items.push(new TeamItem(r.url, r.state, ITEMS.teamRelay, r.state === 'open' || r.state === 'connected' ? 'plug' : 'debug-disconnect'));
  for (const p of t.peers ?? []) items.push(new PeerItem(p));
  return items;
}

export class TeamProvider extends CtxTree<TeamItem> {
  constructor(ctx: Ctx) {
    super(ctx, 'status');
  }

  getChildren(node?: TeamItem): TeamItem[] {
    if (node || !this.ctx.team) return [];
    return teamItems(this.ctx.team);
  }
}
