/**
 * After any change to what the views serve — a switch made here, from the CLI or by a teammate, or
 * an edit to an active layer — VS Code follows: editors read their files again, the Explorer and
 * Source Control refresh, and the processes still running the old files are named with an offer to
 * restart them. The agent says which view paths changed (`StateEvent.change`); nothing here polls.
 */
import * as vscode from 'vscode';
import { ViewChange } from '../../protocol';
import { Ctx, ViewsChanged } from '../ctx';
import { Action, showActions } from '../errors';
import { Logger } from '../log';
import { EditorFollower } from './editors';
import { ExplorerFollower } from './explorer';
import { changedRoots } from './paths';
import { StaleProcess, StaleProcesses } from './stale';

/** What one round of following did (kept for the extension-host tests and the log). */
export interface FollowRecord {
  reason: string;
  roots: string[];
  reloaded: string[];
  dirty: string[];
  explorer: boolean;
  scm: string[];
  stale: StaleProcess[];
  at: number;
}

/** Changes arriving this close together are followed once. */
const COALESCE_MS = 50;

export class Follower implements vscode.Disposable {
  private readonly log: Logger;
  private readonly editors: EditorFollower;
  private readonly stale: StaleProcesses;
  private queued: { reasons: string[]; paths: Set<string>; stale: ViewChange['stale'] } | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly records: FollowRecord[] = [];
  private readonly done = new vscode.EventEmitter<FollowRecord>();
  /** Fired after each round, with what it did. */
  readonly onDidFollow = this.done.event;
  private readonly sub: vscode.Disposable;

  constructor(
    private readonly ctx: Ctx,
    private readonly explorer: ExplorerFollower,
  ) {
    this.log = ctx.log.for('follow');
    this.editors = new EditorFollower(this.log);
    this.stale = new StaleProcesses(ctx.log.for('stale'));
    this.sub = ctx.onDidChangeViews((e) => this.queue(e));
  }

  /** What the last rounds did, newest last. */
  history(): readonly FollowRecord[] {
    return this.records;
  }

  private queue(e: ViewsChanged): void {
    const q = (this.queued ??= { reasons: [], paths: new Set(), stale: [] });
    q.reasons.push(e.reason);
    for (const p of e.change.paths) q.paths.add(p);
    q.stale.push(...e.change.stale);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const batch = this.queued!;
      this.queued = null;
      this.running = this.running.then(() => this.follow(batch.reasons.join('+'), { paths: [...batch.paths], stale: batch.stale }));
    }, COALESCE_MS);
  }

  private async follow(reason: string, change: ViewChange): Promise<void> {
    const roots = changedRoots(change, this.ctx.status?.views ?? []);
    if (!roots.length && !change.stale.length) return;
    const show = (message: string, actions: Action[]): void => showActions('info', message, actions);
    const rec: FollowRecord = { reason, roots, reloaded: [], dirty: [], explorer: false, scm: [], stale: [], at: 0 };
    try {
      this.log.info(`${reason} changed ${roots.join(', ') || 'nothing in a mounted view'}`);
      Object.assign(rec, await this.editors.follow(roots, show));
      rec.explorer = await this.explorer.refreshExplorer(roots);
      rec.scm = await this.explorer.refreshScm(roots);
      rec.stale = await this.stale.identify(change.stale);
      this.stale.report(rec.stale, (message, actions) => showActions('warning', message, actions));
    } catch (e) {
      this.log.error(`following ${reason} failed: ${(e as Error).stack ?? e}`);
    }
    rec.at = Date.now();
    this.records.push(rec);
    if (this.records.length > 20) this.records.shift();
    this.done.fire(rec);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.sub.dispose();
    this.editors.dispose();
    this.stale.dispose();
    this.done.dispose();
  }
}
