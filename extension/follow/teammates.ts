/**
 * A teammate's decision that changes this window's views is said out loud: a notification (who,
 * what, with "Undo" = revert it for the team after a confirmation, "Hold" = keep mine here) and a
 * line in the Strata log. Every teammate's decision gets the log line, whether it changed the
 * views here or not (a held layer, say).
 *
 * The agent applies a teammate's decision and announces the change to the views (a state event with
 * reason team-event, team-snapshot or team-pulled); the team status names the decision
 * (`lastDecision.event`). Either may be seen first (a status fetched for a heartbeat can show the
 * decision before it is applied here), so each waits a little for the other.
 */
import * as vscode from 'vscode';
import { TeamEvent } from '../../protocol';
import { ask } from '../ask';
import { Ctx, ViewsChanged } from '../ctx';
import { decisionLine, decisionSummary, switchedBy } from '../decisions';
import { Action, errorCode, formatError } from '../errors';
import { Logger } from '../log';

/** State event reasons of changes a teammate caused (the rest are this agent's own doing). */
const TEAMMATE_REASONS = new Set(['team-event', 'team-snapshot', 'team-pulled']);
/** How long a decision and a change to the views wait for each other. */
const MATCH_MS = 10_000;

export interface TeammateNotice {
  id: string;
  event: TeamEvent;
}

export class TeammateNotices implements vscode.Disposable {
  /** The id of the latest decision already seen (undefined: not looked yet since connecting or joining). */
  private seen: string | null | undefined = undefined;
  /** When the views last changed for a teammate's decision not yet matched with it. */
  private change: { at: number } | null = null;
  /** A teammate's decision not yet matched with a change to the views here. */
  private decision: { id: string; event: TeamEvent; at: number } | null = null;
  private readonly subs: vscode.Disposable[];

  constructor(
    private readonly ctx: Ctx,
    private readonly log: Logger,
    private readonly show: (message: string, actions: Action[]) => void,
  ) {
    this.subs = [
      ctx.onDidChangeViews((e) => this.viewsChanged(e)),
      ctx.onDidChange((c) => {
        if (c === 'team') this.teamChanged();
        else if (c === 'health' && !ctx.connected) this.seen = undefined;
      }),
    ];
  }

  private viewsChanged(e: ViewsChanged): void {
    if (!TEAMMATE_REASONS.has(e.reason)) return;
    this.change = { at: Date.now() };
    this.match();
  }

  private teamChanged(): void {
    const t = this.ctx.team;
    if (!t?.joined) {
      this.seen = undefined;
      this.change = this.decision = null;
      return;
    }
    const d = t.lastDecision;
    const id = d?.id ?? null;
    if (this.seen === undefined) {
      // The first look after connecting or joining: what was decided before is no news.
      this.seen = id;
      this.change = this.decision = null;
      return;
    }
    if (id === this.seen) return;
    this.seen = id;
    const ev = d?.event;
    if (!ev || !d || ev.origin === t.agent) {
      this.decision = null; // this agent's own decision
      return;
    }
    this.log.info(`${decisionLine(ev)} (by ${ev.user}@${ev.host}, decision ${d.id})`);
    this.decision = { id: d.id, event: ev, at: Date.now() };
    this.match();
  }

  /** A teammate's decision and the change it made here, both recent: say so. */
  private match(): void {
    const { change, decision } = this;
    if (!change || !decision || Math.abs(change.at - decision.at) > MATCH_MS) return;
    this.change = this.decision = null;
    this.notify({ id: decision.id, event: decision.event });
  }

  private notify(n: TeammateNotice): void {
    this.show(`Strata: ${n.event.user} changed the team's layers: ${decisionSummary(n.event)}. Your views follow.`, [
      { title: 'Undo', run: () => this.undo(n) },
      { title: 'Hold', run: () => this.hold(n) },
    ]);
  }

  /** Revert the decision for the whole team, once the user confirms. */
  async undo(n: TeammateNotice): Promise<void> {
    const ok = await ask(
      `Undo ${n.event.user}'s change (${decisionSummary(n.event)}) for the whole team?`,
      "This is a new team decision: every teammate's views switch back.",
      'Undo for the Team',
    );
    if (!ok) return;
    try {
      const r = await this.ctx.call('team.revert', { id: n.id });
      this.log.info(`undid ${n.event.user}'s ${decisionSummary(n.event)} (decision ${r.decision})`);
    } catch (e) {
      this.show(`Strata: undoing ${n.event.user}'s change failed: ${formatError(e)}`, []);
    }
  }

  /**
   * Keep this window's layers as they were before the decision: hold the layers it switched, then
   * switch them back here only (a held layer switches locally). The team keeps its decision.
   */
  async hold(n: TeammateNotice): Promise<void> {
    const { on, off } = switchedBy(n.event);
    try {
      for (const name of [...on, ...off]) await this.ctx.call('team.hold', { name, hold: true });
      if (off.length) await this.ctx.call('activate', { names: off });
      if (on.length) await this.ctx.call('deactivate', { names: on, force: false });
      this.log.info(`holding ${[...on, ...off].join(', ')} after ${n.event.user}'s decision: kept ${off.join(', ') || 'no layer'} here`);
      this.show(
        `Strata: kept ${off.join(', ') || 'your layers'} here; the team follows ${n.event.user}'s change. "Follow the Team" in the Team view switches back.`,
        [],
      );
    } catch (e) {
      const busy = errorCode(e) === 'E_LAYER_BUSY' ? ' Close the files named, then try again.' : '';
      this.show(`Strata: holding your layers failed: ${formatError(e)}${busy}`, []);
    }
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}
