/**
 * The Team view, from `team.status`: the team, its latest decision in words ("bob: tool-3 → tool-2,
 * 2 min ago") and how far it got ("applied on 3 of 4"), this machine's drift (team layers edited
 * here, held, or out of step), the relays, and every peer with its connection, active set and drift.
 */
import * as os from 'os';
import * as vscode from 'vscode';
import { TeamPeerInfo, TeamStatus } from '../../protocol';
import { COMMANDS, ITEMS } from '../constants';
import { Ctx } from '../ctx';
import { decisionLine } from '../decisions';
import { CtxTree } from './base';

export class TeamItem extends vscode.TreeItem {
  /** The layer an item is about (drift, hold), for its commands. */
  layer?: string;

  constructor(label: string, description: string, contextValue: string, icon: string, tooltip?: string, colour?: string) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.description = description;
    this.contextValue = contextValue;
    this.iconPath = new vscode.ThemeIcon(icon, colour ? new vscode.ThemeColor(colour) : undefined);
    if (tooltip) this.tooltip = tooltip;
  }
}

/** "+a -b ~c" in words: "runs a", "lacks b", "edited c". */
function driftWords(drift: readonly string[]): string {
  return drift.map((d) => (d[0] === '+' ? `runs ${d.slice(1)}` : d[0] === '-' ? `lacks ${d.slice(1)}` : `edited ${d.slice(1)}`)).join(', ');
}

export class PeerItem extends TeamItem {
  constructor(readonly peer: TeamPeerInfo) {
    const relay = peer.active === null;
    const parts = [peer.connection, relay ? 'relay' : peer.active!.join(', ') || 'no layers'];
    if (peer.drift.length) parts.push(`drift: ${driftWords(peer.drift)}`);
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

/**
 * Peers without the ghosts a re-join leaves: an agent that left and joined again comes back under a
 * new id (a new key), and its old presence lingers (via the relay for a few heartbeats, then
 * "gone"). A peer not connected directly is dropped when the same user on the same host was seen
 * since (another peer, or this agent itself). Two live agents of one user name on one host would
 * hide each other at times.
 */
export function withoutGhosts(peers: readonly TeamPeerInfo[], self?: { agent: string; user?: string; host: string }): TeamPeerInfo[] {
  return peers.filter((p) => {
    if (p.connection === 'connected') return true;
    const same = (q: { agent: string; user?: string; host: string }) => q.agent !== p.agent && q.host === p.host && q.user === p.user;
    if (self && same(self)) return false;
    return !peers.some((q) => same(q) && q.lastSeen > p.lastSeen);
  });
}

export function teamItems(t: TeamStatus, now = Date.now(), host = os.hostname()): TeamItem[] {
  if (!t.joined) {
    const item = new TeamItem('Not in a team', 'Join Team…', ITEMS.teamNotJoined, 'organization');
    item.command = { command: COMMANDS.joinTeam, title: 'Join Team…' };
    return [item];
  }
  const items: TeamItem[] = [
    new TeamItem(
      `Team ${t.team}`,
      `as ${t.user ?? t.agent}${t.listen ? ` · listening on ${t.listen}` : ''}`,
      ITEMS.teamHeader,
      'organization',
      [t.teamFile, t.agent && `agent ${t.agent}`].filter(Boolean).join('\n'),
    ),
  ];
  items.push(new TeamItem('Team layers active', (t.desired ?? []).join(', ') || 'none', ITEMS.teamInfo, 'layers'));
  if (t.lastDecision) {
    const d = t.lastDecision;
    const all = d.applied === d.of;
    const ev = d.event;
    items.push(
      new TeamItem(
        ev ? decisionLine(ev, now) : 'Last decision',
        `applied on ${d.applied} of ${d.of}`,
        ITEMS.teamDecision,
        all ? 'check-all' : 'sync',
        ev ? `The team's latest decision, by ${ev.user}@${ev.host} at ${new Date(ev.tag.wall).toLocaleString()} (${d.id})` : d.id,
        all ? 'charts.green' : undefined,
      ),
    );
  }
  for (const c of t.contentDrift ?? []) {
    const item = new TeamItem(
      `${c.layer} differs from the team file`,
      'edited here',
      ITEMS.teamContentDrift,
      'warning',
      `This machine's ${c.layer} (${c.here.slice(0, 19)}…) is not the team's (${c.expected.slice(0, 19)}…): teammates run another version. ` +
        "Update the team file (and commit it) to share this one, or import the team's version again.",
      'list.warningForeground',
    );
    item.layer = c.layer;
    items.push(item);
  }
  const stepDrift = (t.drift ?? []).filter((d) => !d.startsWith('~'));
  if (stepDrift.length)
    items.push(
      new TeamItem(
        'Drift here',
        driftWords(stepDrift),
        ITEMS.teamInfo,
        'warning',
        'Team layers this machine runs differently from the team (held layers included)',
        'list.warningForeground',
      ),
    );
  for (const h of t.held ?? []) {
    const item = new TeamItem(
      `Holding ${h}`,
      'kept as you have it',
      ITEMS.teamHeld,
      'pinned',
      'This machine does not follow the team for this layer.',
    );
    item.layer = h;
    items.push(item);
  }
  for (const p of t.pulling ?? [])
    items.push(
      new TeamItem(`Pulling ${p.layer}`, p.total ? `${Math.floor((p.done / p.total) * 100)}%` : '', ITEMS.teamInfo, 'cloud-download'),
    );
  for (const r of t.relays ?? [])
    items.push(new TeamItem(r.url, r.state, ITEMS.teamRelay, r.state === 'open' || r.state === 'connected' ? 'plug' : 'debug-disconnect'));
  const self = t.agent ? { agent: t.agent, user: t.user, host } : undefined;
  for (const p of withoutGhosts(t.peers ?? [], self)) items.push(new PeerItem(p));
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
