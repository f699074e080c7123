/**
 * One client of the control socket: its bytes split into request lines, each started in turn,
 * within limits, so that no client (one that never reads, or a thousand that never finish a line)
 * can grow the agent without bound or keep its thread busy for others:
 * - backpressure: while a client has more than PAUSE_AT of replies unread, or MAX_IN_FLIGHT
 *   requests running, the agent stops reading from it (its own writes then block);
 * - a client with more than DROP_AT unread (events keep coming to a subscriber that never reads),
 *   or the one that takes all clients past TOTAL_UNREAD, is dropped;
 * - a partial line may hold MAX_CONTROL_MESSAGE bytes, all of them together TOTAL_PARTIAL, and
 *   must end within PARTIAL_TIMEOUT_MS of its first byte, else the connection is closed.
 */
import * as net from 'net';
import { ErrorCode, MAX_CONTROL_MESSAGE, ProgressEvent, Response, StateEvent } from '../protocol';

export const CONTROL_LIMITS = {
  pauseAt: 1 << 20,
  dropAt: 8 << 20,
  totalUnread: 64 << 20,
  maxInFlight: 16,
  totalPartial: 16 << 20,
  partialTimeoutMs: 10_000,
};

/** What all connections of one server share. */
export interface Shared {
  conns: Set<Connection>;
  /** Bytes held in partial lines, over all connections. */
  partial: number;
  limits: typeof CONTROL_LIMITS;
  handle: (conn: Connection, line: string) => Promise<void>;
  log: (msg: string) => void;
}

export class Connection {
  subscribed = false;
  private partial = '';
  private queued: string[] = [];
  private inFlight = 0;
  private paused = false;
  private closing = false;
  private partialTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly socket: net.Socket,
    private readonly shared: Shared,
  ) {
    shared.conns.add(this);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.on('error', () => {});
    socket.on('close', () => this.closed());
  }

  send(msg: Response | StateEvent | ProgressEvent): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    s.write(JSON.stringify(msg) + '\n');
    const { pauseAt, dropAt, totalUnread } = this.shared.limits;
    if (s.writableLength <= pauseAt) return;
    let total = 0;
    for (const c of this.shared.conns) total += c.socket.writableLength;
    if (s.writableLength > dropAt || total > totalUnread) {
      this.shared.log(`[control] dropped a client that left ${s.writableLength} bytes unread`);
      s.destroy();
    }
  }

  private onData(chunk: string): void {
    if (this.closing) return;
    const held = this.partial.length;
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop()!;
    this.shared.partial += this.partial.length - held;
    for (const line of lines) if (line.trim()) this.queued.push(line);
    const { totalPartial, partialTimeoutMs } = this.shared.limits;
    if (this.partial.length > MAX_CONTROL_MESSAGE) {
      return this.refuse('E_TOO_LARGE', `message exceeds ${MAX_CONTROL_MESSAGE} bytes; connection closed`);
    }
    if (this.shared.partial > totalPartial) {
      return this.refuse('E_TOO_LARGE', `unfinished requests of all clients exceed ${totalPartial} bytes; connection closed`);
    }
    // The clock runs from a line's first byte: trickling bytes does not keep it open.
    if (!this.partial || lines.length) this.clearTimer();
    if (this.partial && !this.partialTimer) {
      this.partialTimer = setTimeout(
        () => this.refuse('E_BAD_REQUEST', `a request stayed unfinished (no newline) for ${partialTimeoutMs / 1000} s; connection closed`),
        partialTimeoutMs,
      );
      this.partialTimer.unref();
    }
    this.pump();
  }

  /** Start queued requests while the client has room, and read on only when none wait. */
  private pump(): void {
    const s = this.socket;
    const { pauseAt, maxInFlight } = this.shared.limits;
    while (this.queued.length && this.inFlight < maxInFlight && s.writableLength < pauseAt && !s.destroyed) {
      const line = this.queued.shift()!;
      this.inFlight++;
      void this.shared.handle(this, line).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
    const hold = this.queued.length > 0 || s.writableLength >= pauseAt;
    if (hold === this.paused || s.destroyed) return;
    this.paused = hold;
    if (hold) s.pause();
    else s.resume();
  }

  private refuse(code: ErrorCode, message: string): void {
    if (this.closing) return;
    this.send({ id: -1, ok: false, error: { code, message } });
    this.closing = true;
    this.queued = [];
    this.release();
    this.socket.end();
    // A client that does not read would keep the socket (and the reply) forever.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private release(): void {
    this.shared.partial -= this.partial.length;
    this.partial = '';
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.partialTimer) clearTimeout(this.partialTimer);
    this.partialTimer = null;
  }

  private closed(): void {
    this.release();
    this.queued = [];
    this.shared.conns.delete(this);
  }
}
