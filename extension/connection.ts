/**
 * One connection to the agent at a time. The first attempt starts the bundled agent when nothing
 * answers (detached, so it outlives window reloads). After a close it reconnects with jittered
 * backoff but starts nothing: an agent stopped on purpose stays stopped until the user starts it,
 * and one restarted by someone else is picked up on the next attempt.
 */
import { AgentClient, connectOrStart } from '../shared/client';
import { StrataError } from '../shared/errors';
import { Backoff } from '../shared/backoff';
import { AgentStatus, CONTROL_PROTOCOL_VERSION, ProgressEvent, StateEvent } from '../protocol';
import { formatError } from './errors';
import { AgentLocation } from './home';
import { Logger } from './log';

export interface ConnectionEvents {
  connected(client: AgentClient, status: AgentStatus): void;
  disconnected(reason: string): void;
  event(e: StateEvent | ProgressEvent): void;
}

export class Connection {
  private client: AgentClient | null = null;
  private timer: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | null = null;
  private disposed = false;
  private readonly backoff = new Backoff({ baseMs: 200, capMs: 5000 });

  constructor(
    readonly where: AgentLocation,
    private readonly on: ConnectionEvents,
    private readonly log: Logger,
  ) {}

  get current(): AgentClient | null {
    return this.client;
  }

  /** Connect now (cancelling a scheduled retry); with `start`, start the agent when nothing answers. Rejects only when `start` fails. */
  async open(start: boolean): Promise<void> {
    if (this.attempt) {
      if (!start) return this.attempt.catch(() => {});
      await this.attempt.catch(() => {});
    }
    if (this.disposed || this.client) return;
    clearTimeout(this.timer);
    this.attempt = this.tryOnce(start);
    try {
      await this.attempt;
    } finally {
      this.attempt = null;
    }
  }

  private async tryOnce(start: boolean): Promise<void> {
    const { home, socket, agentScript } = this.where;
    let c: AgentClient;
    try {
      // A desktop extension host runs on Electron's binary: make it behave as plain Node for the agent.
      c = await connectOrStart({ home, socket, agentScript, start, timeoutMs: 20000, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
    } catch (e) {
      this.fail(formatError(e));
      if (start) throw e;
      return;
    }
    if (this.disposed) {
      c.close();
      return;
    }
    // Events that arrive with the subscribe reply are newer than its status: hold them until then.
    const early: (StateEvent | ProgressEvent)[] = [];
    let live = false;
    c.onEvent = (e) => {
      if (this.client !== c) return;
      if (live) this.on.event(e);
      else early.push(e);
    };
    c.onClose = () => {
      if (this.client !== c) return;
      this.client = null;
      this.fail('the agent closed the connection');
    };
    this.client = c;
    try {
      const status = await c.call('subscribe', {});
      if (status.protocol !== CONTROL_PROTOCOL_VERSION) {
        throw new StrataError(
          'E_BAD_REQUEST',
          `the agent speaks control protocol ${status.protocol}, this extension ${CONTROL_PROTOCOL_VERSION}`,
          'Restart the agent (Strata: Restart Agent) so the bundled one runs.',
        );
      }
      this.backoff.reset();
      this.log.info(`connected to the agent (pid ${status.pid}) on ${socket}`);
      this.on.connected(c, status);
      live = true;
      for (const e of early) this.on.event(e);
    } catch (e) {
      if (this.client === c) {
        this.client = null;
        c.onClose = () => {};
        c.close();
        this.fail(formatError(e));
      }
      if (start) throw e;
    }
  }

  private fail(reason: string): void {
    this.on.disconnected(reason);
    if (this.disposed) return;
    clearTimeout(this.timer);
    const delay = this.backoff.next();
    this.log.trace(`retrying in ${delay} ms (attempt ${this.backoff.attempt}): ${reason}`);
    this.timer = setTimeout(() => void this.open(false), delay);
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    if (c) {
      c.onClose = () => {};
      c.close();
    }
  }
}
