/**
 * The one owner. Everything the extension creates is owned here with one of two lifetimes:
 * the extension's (views, commands, status bar; disposed in reverse order on deactivate) or one
 * agent connection's (the client, its progress notifications, pending refreshes; disposed when the
 * connection closes, so a reconnect rebuilds only those). It also holds what the agent last said:
 * its status (pushed with every StateEvent) and the team status (fetched after each event).
 */
import * as vscode from 'vscode';
import { StrataError } from '../shared/errors';
import { AgentStatus, Method, Params, ProgressEvent, Result, StateEvent, TeamStatus, ViewChange } from '../protocol';
import { Connection } from './connection';
import { CONTEXT_KEYS, SETTINGS } from './constants';
import { AgentLocation, locateAgent } from './home';
import { Log, Logger } from './log';
import { ProgressTracker } from './progress';

export type Health = 'connecting' | 'connected' | 'down';
export type Change = 'health' | 'status' | 'team';

/** A change to what the views serve, as the agent announced it, with the status after it. */
export interface ViewsChanged {
  reason: string;
  change: ViewChange;
  after: AgentStatus;
}

/** Team status refreshes are coalesced: presence events come with every teammate's heartbeat. */
const TEAM_REFRESH_MS = 150;

export class Ctx implements vscode.Disposable {
  readonly log = new Log();
  private readonly logger: Logger = this.log.for('ctx');
  private readonly extensionLifetime: vscode.Disposable[] = [];
  private connectionLifetime: vscode.Disposable[] = [];
  private connection: Connection;
  private _health: Health = 'connecting';
  private _downReason = '';
  private _status: AgentStatus | null = null;
  private _team: TeamStatus | null = null;
  private progress: ProgressTracker | null = null;
  private teamTimer: NodeJS.Timeout | undefined;
  /** Whether this window starts the agent when none answers (startup.ts decides). */
  private startWanted = false;
  private readonly changes = new vscode.EventEmitter<Change>();
  /** Fired after the health, the agent status or the team status changed. */
  readonly onDidChange = this.changes.event;
  private readonly viewChanges = new vscode.EventEmitter<ViewsChanged>();
  /** Fired after the status, when a change touched what the views serve (a switch, an active layer's edit). */
  readonly onDidChangeViews = this.viewChanges.event;

  constructor(readonly extension: vscode.ExtensionContext) {
    this.own(this.log);
    this.own(this.changes);
    this.own(this.viewChanges);
    this.connection = this.newConnection();
    this.own(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${SETTINGS.section}.${SETTINGS.home}`)) this.relocate();
      }),
    );
    void vscode.commands.executeCommand('setContext', CONTEXT_KEYS.agent, this._health);
  }

  // ---- lifetimes -----------------------------------------------------------------------------

  /** Owned until the extension deactivates. */
  own<T extends vscode.Disposable>(d: T): T {
    this.extensionLifetime.push(d);
    return d;
  }

  /** Owned until the current agent connection closes. */
  ownForConnection<T extends vscode.Disposable>(d: T): T {
    this.connectionLifetime.push(d);
    return d;
  }

  private endConnectionLifetime(): void {
    for (const d of this.connectionLifetime.splice(0).reverse()) {
      try {
        d.dispose();
      } catch (e) {
        this.logger.warn(`dispose failed: ${(e as Error).message}`);
      }
    }
  }

  dispose(): void {
    this.connection.dispose();
    this.endConnectionLifetime();
    for (const d of this.extensionLifetime.splice(0).reverse()) {
      try {
        d.dispose();
      } catch {
        /* keep disposing the rest */
      }
    }
  }

  // ---- state -----------------------------------------------------------------------------------

  get where(): AgentLocation {
    return this.connection.where;
  }
  get health(): Health {
    return this._health;
  }
  /** Why the agent is down, when it is. */
  get downReason(): string {
    return this._downReason;
  }
  get connected(): boolean {
    return this._health === 'connected';
  }
  get status(): AgentStatus | null {
    return this._status;
  }
  get team(): TeamStatus | null {
    return this._team;
  }

  private setHealth(h: Health, reason = ''): void {
    this._downReason = reason;
    if (h === this._health) return;
    this._health = h;
    void vscode.commands.executeCommand('setContext', CONTEXT_KEYS.agent, h);
    this.changes.fire('health');
  }

  // ---- the agent -------------------------------------------------------------------------------

  /** Connect (asynchronously); with `start`, start the bundled agent when none answers. */
  start(start: boolean): void {
    this.startWanted = start;
    this.connection.open(start).catch((e) => this.logger.error(`could not start the agent: ${(e as Error).message}`));
  }

  /** Connect now, starting the agent if needed; rejects with the reason when it cannot. */
  startAgent(): Promise<void> {
    return this.connection.open(true);
  }

  /** Connect now if down (without starting anything). */
  reconnect(): Promise<void> {
    return this.connection.open(false);
  }

  /** Show the agent's progress events of `task` in `report` (a command's own notification) rather than in one of their own. */
  claimProgress(task: string, report: vscode.Progress<{ message?: string; increment?: number }>): vscode.Disposable {
    return this.progress?.claim(task, report) ?? { dispose: () => {} };
  }

  call<M extends Method>(method: M, params: Params<M>): Promise<Result<M>> {
    const c = this.connection.current;
    if (!c || !this.connected) {
      return Promise.reject(
        new StrataError('E_AGENT_UNAVAILABLE', 'the Strata agent is not running', 'Start it with "Strata: Start Agent".'),
      );
    }
    return c.call(method, params);
  }

  /** Re-read the agent's status and the team's. */
  async refresh(): Promise<void> {
    if (!this.connected) return this.reconnect();
    this.setStatus(await this.call('status', {}));
    await this.fetchTeam();
  }

  private newConnection(): Connection {
    const where = locateAgent(this.extension.extensionPath);
    this.logger.info(`STRATA_HOME ${where.home} (from the ${where.source}); socket ${where.socket}`);
    return new Connection(
      where,
      {
        connected: (client, status) => {
          this.endConnectionLifetime();
          this.progress = this.ownForConnection(new ProgressTracker(this.log.for('progress')));
          this.ownForConnection({ dispose: () => clearTimeout(this.teamTimer) });
          this.ownForConnection({ dispose: () => client.close() });
          this._status = status; // before the health event, so listeners see a whole state
          this.setHealth('connected');
          this.changes.fire('status');
          this.scheduleTeamRefresh();
        },
        disconnected: (reason) => {
          if (this._health === 'down') {
            this._downReason = reason; // a retry failed again: nothing else changed
            return;
          }
          if (this._health === 'connected') this.logger.warn(`lost the agent: ${reason}`);
          this.endConnectionLifetime();
          this.progress = null;
          this._status = null;
          this._team = null;
          this.setHealth('down', reason);
          this.changes.fire('status');
          this.changes.fire('team');
        },
        event: (e) => this.onAgentEvent(e),
      },
      this.log.for('connection'),
    );
  }

  /** The home setting changed: drop this connection and connect to the other agent. */
  private relocate(): void {
    this.connection.dispose();
    this.endConnectionLifetime();
    this._status = null;
    this._team = null;
    this.setHealth('connecting');
    this.changes.fire('status');
    this.changes.fire('team');
    this.connection = this.newConnection();
    this.start(this.startWanted);
  }

  private onAgentEvent(e: StateEvent | ProgressEvent): void {
    if (e.event === 'progress') {
      this.progress?.handle(e);
      return;
    }
    this.logger.trace(`state event: ${e.reason}${e.change ? ` (changed ${e.change.paths.join(' ')})` : ''}`);
    this.setStatus(e.status);
    if (e.change) this.viewChanges.fire({ reason: e.reason, change: e.change, after: e.status });
    this.scheduleTeamRefresh();
  }

  private setStatus(s: AgentStatus): void {
    this._status = s;
    this.changes.fire('status');
  }

  private scheduleTeamRefresh(): void {
    clearTimeout(this.teamTimer);
    this.teamTimer = setTimeout(() => void this.fetchTeam(), TEAM_REFRESH_MS);
  }

  private async fetchTeam(): Promise<void> {
    try {
      const team = await this.call('team.status', {});
      this._team = team;
      void vscode.commands.executeCommand('setContext', CONTEXT_KEYS.teamJoined, team.joined);
      this.changes.fire('team');
    } catch (e) {
      if (this.connected) this.logger.warn(`team.status failed: ${(e as Error).message}`);
    }
  }
}
