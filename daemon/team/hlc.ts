/**
 * Hybrid logical clock: timestamps that follow wall time when clocks agree, yet never go backwards
 * and always order a cause before its effect. The agent id breaks ties, so two agents never issue
 * equal timestamps. Pure: time comes from an injected `now`.
 */
import type { Hlc } from '../../protocol/team';
import { MAX_LOGICAL, isAgentId, isHlc } from '../../protocol/team';

/** Order by wall, then logical, then agent (plain string comparison). */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0;
}

/** (wall, logical) only: the part of a timestamp the local clock carries forward. */
function comparePhysical(a: { wall: number; logical: number }, b: { wall: number; logical: number }): number {
  return a.wall !== b.wall ? a.wall - b.wall : a.logical - b.logical;
}

export interface HlcOptions {
  /** A remote wall further than this ahead of local now is not adopted (default 60 s). */
  maxDriftMs?: number;
}

export class HlcClock {
  readonly agent: string;
  private readonly now: () => number;
  private readonly maxDriftMs: number;
  private wall = 0;
  private logical = 0;
  /** How many remote timestamps had their wall ignored for being too far ahead (for logs). */
  driftRejections = 0;

  constructor(agent: string, now: () => number = Date.now, opts: HlcOptions = {}) {
    if (!isAgentId(agent)) throw new Error(`HLC agent id ${JSON.stringify(agent)} is not a valid id (1-64 of A-Z a-z 0-9 . _ : -)`);
    this.agent = agent;
    this.now = now;
    this.maxDriftMs = opts.maxDriftMs ?? 60_000;
  }

  /** The local wall clock in ms (0 if it is not a sane number). */
  physicalNow(): number {
    const t = Math.floor(this.now());
    return Number.isSafeInteger(t) && t > 0 ? t : 0;
  }

  /** A timestamp for a local event: strictly greater than every timestamp issued or observed. */
  tick(): Hlc {
    const pt = this.physicalNow();
    if (pt > this.wall) {
      this.wall = pt;
      this.logical = 0;
    } else if (this.logical >= MAX_LOGICAL) {
      // The counter stays within what the schema accepts: move the wall on by 1 ms instead.
      this.wall += 1;
      this.logical = 0;
    } else {
      this.logical += 1;
    }
    return this.last();
  }

  /**
   * Merge a remote timestamp so later ticks order after it. A remote wall more than maxDriftMs ahead
   * of local now is not adopted (one peer with a wrong clock must not drag every clock forward);
   * its logical counter is still merged. Returns false when the wall was ignored.
   */
  observe(remote: Hlc): boolean {
    if (!isHlc(remote)) throw new Error(`not an HLC timestamp: ${JSON.stringify(remote)}`);
    if (remote.wall > this.wall && remote.wall > this.physicalNow() + this.maxDriftMs) {
      this.driftRejections++;
      this.logical = Math.max(this.logical, remote.logical);
      return false;
    }
    if (comparePhysical(remote, { wall: this.wall, logical: this.logical }) > 0) {
      this.wall = remote.wall;
      this.logical = remote.logical;
    }
    return true;
  }

  /** Restore after a restart (the persisted last timestamp), or absorb a timestamp unconditionally. */
  restore(last: Hlc): void {
    if (!isHlc(last)) throw new Error(`not an HLC timestamp: ${JSON.stringify(last)}`);
    if (comparePhysical(last, { wall: this.wall, logical: this.logical }) > 0) {
      this.wall = last.wall;
      this.logical = last.logical;
    }
  }

  /** The latest timestamp issued or observed, carrying this clock's agent id. */
  last(): Hlc {
    return { wall: this.wall, logical: this.logical, agent: this.agent };
  }
}
