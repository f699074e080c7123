/**
 * Who gets one of the few slots for connections that have not finished the handshake. A flood of
 * connections that never authenticate must not keep legitimate peers out, so slots are shared by
 * address: one address (an IPv4 address, an IPv6 /64) holds at most `perAddress`; when all are
 * taken, a newcomer from a less busy address takes the oldest slot of the busiest one; and while
 * more than half are taken, the handshake deadline is the short one. An honest peer finishes in a
 * few round trips, so it gets through while a flooder keeps losing its oldest attempts.
 */
import * as net from 'net';

export interface PendingSlot {
  readonly address: string;
  readonly since: number;
  /** Drop the connection holding it (called on eviction and at the deadline). */
  drop: (why: 'evicted' | 'deadline') => void;
  timer?: NodeJS.Timeout;
}

/** An IPv4 address (IPv4-mapped ones too) as it is; an IPv6 one as its /64. */
export function addressGroup(remote: string | undefined): string {
  if (!remote) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (mapped) return mapped[1];
  if (!net.isIPv6(remote)) return remote;
  const [head, tail = ''] = remote.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = remote.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export class Admission {
  /** Per address, oldest first. */
  private readonly byAddress = new Map<string, Set<PendingSlot>>();
  private count = 0;
  /** Connections refused or evicted (for logs and tests). */
  refused = 0;
  evicted = 0;

  constructor(
    private readonly limits: { maxPending: number; maxPendingPerAddress: number; authTimeoutMs: number; busyAuthTimeoutMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  get pending(): number {
    return this.count;
  }

  /**
   * A slot for a new connection from `remote`, with its deadline armed; null when it must be
   * refused (its address holds its share already, or every slot belongs to addresses no busier).
   */
  admit(remote: string | undefined, drop: PendingSlot['drop']): PendingSlot | null {
    const address = addressGroup(remote);
    const mine = this.byAddress.get(address)?.size ?? 0;
    if (mine >= this.limits.maxPendingPerAddress) {
      this.refused++;
      return null;
    }
    if (this.count >= this.limits.maxPending) {
      let busiest: Set<PendingSlot> | undefined;
      for (const slots of this.byAddress.values()) if (!busiest || slots.size > busiest.size) busiest = slots;
      if (!busiest || busiest.size <= mine + 1) {
        this.refused++;
        return null;
      }
      const victim = busiest.values().next().value as PendingSlot;
      this.release(victim);
      this.evicted++;
      victim.drop('evicted');
    }
    const slot: PendingSlot = { address, since: this.now(), drop };
    let slots = this.byAddress.get(address);
    if (!slots) this.byAddress.set(address, (slots = new Set()));
    slots.add(slot);
    this.count++;
    const busy = this.count > this.limits.maxPending / 2;
    slot.timer = setTimeout(
      () => {
        if (this.release(slot)) slot.drop('deadline');
      },
      busy ? this.limits.busyAuthTimeoutMs : this.limits.authTimeoutMs,
    );
    slot.timer.unref();
    return slot;
  }

  /** The connection authenticated or closed: free its slot. False if it was free already. */
  release(slot: PendingSlot): boolean {
    const slots = this.byAddress.get(slot.address);
    if (!slots?.delete(slot)) return false;
    if (slots.size === 0) this.byAddress.delete(slot.address);
    this.count--;
    if (slot.timer) clearTimeout(slot.timer);
    return true;
  }
}
