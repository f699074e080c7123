/**
 * The teammates' latest presence, checked and bounded: a presence is kept only if it is newer
 * (pseq) than the one held for that agent, and at most `max` agents are remembered, the one heard
 * from least recently forgotten first. Each presence remembers the link it came in on (the next
 * hop toward that agent for pulls) and when it was heard here (by our clock, not the sender's).
 */
import { Presence } from '../../protocol/team';
import { Conn } from './links';

export class Presences {
  /** Least recently heard first. */
  readonly byAgent = new Map<string, Presence>();
  /** Next hop toward each agent: the link its newest presence arrived on. */
  readonly routes = new Map<string, Conn>();
  private readonly heard = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Is `p` newer than what is held for its agent? */
  isNewer(p: Presence): boolean {
    const old = this.byAgent.get(p.agent);
    return !old || p.pseq > old.pseq;
  }

  /** Keep `p` (already checked and newer), heard now on `via`. */
  keep(p: Presence, via: Conn, now: number): void {
    this.byAgent.delete(p.agent);
    this.byAgent.set(p.agent, p);
    this.routes.set(p.agent, via);
    this.heard.set(p.agent, now);
    for (const agent of this.byAgent.keys()) {
      if (this.byAgent.size <= this.max) break;
      this.forget(agent);
    }
  }

  /** When this node last heard a presence of `agent` (local ms), or undefined. */
  heardAt(agent: string): number | undefined {
    return this.heard.get(agent);
  }

  /** A link closed: it is no route any more. */
  linkClosed(c: Conn): void {
    for (const [agent, via] of [...this.routes]) if (via === c) this.routes.delete(agent);
  }

  private forget(agent: string): void {
    this.byAgent.delete(agent);
    this.routes.delete(agent);
    this.heard.delete(agent);
  }
}
