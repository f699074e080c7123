/**
 * The team handshake on one link: hello → challenge (the accepting side proves it knows the team
 * key) → auth (the dialing side proves it) → welcome. Each side also signs the same fields with
 * its own key, whose fingerprint must be the id it claims: the link is then known to be that
 * agent's. Nothing else is accepted before it is done; any misstep closes the link with a stable
 * close code.
 */
import { CloseCodes, Frame, TEAM_PROTOCOL_VERSION } from '../../protocol/team';
import { NonceCache, clientProof, proofEquals, serverProof } from './auth';
import { Identity, KeyRing, handshakeBytes } from './identity';
import { Conn, Links } from './links';

export class Handshake {
  /** The team served; null on a standalone relay until its first member authenticates. */
  team: string | null;
  private readonly nonces = new NonceCache(10 * 60 * 1000, 100_000);

  constructor(
    private readonly o: {
      identity: Identity;
      team: string | null;
      /** The key derived from the team secret (a function of the team id for a relay). */
      key: Buffer | ((team: string) => Buffer);
      keys: KeyRing;
      links: Links;
      log: (msg: string) => void;
      /** The link is authenticated both ways. */
      established: (c: Conn) => void;
    },
  ) {
    this.team = o.team;
  }

  /** A dialed link opened: say who we are. */
  hello(c: Conn): void {
    const me = this.o.identity;
    this.o.links.send(c, { t: 'hello', v: TEAM_PROTOCOL_VERSION, team: this.team!, agent: me.id, nonce: c.myNonce, key: me.key });
  }

  /** One frame of an unauthenticated link. */
  step(c: Conn, f: Frame): void {
    if (c.direction === 'in') this.accepting(c, f);
    else this.dialing(c, f);
  }

  private keyFor(team: string): Buffer {
    return typeof this.o.key === 'function' ? this.o.key(team) : this.o.key;
  }

  private close(c: Conn, code: number, why: string): void {
    this.o.links.close(c, code, why);
  }

  private accepting(c: Conn, f: Frame): void {
    const me = this.o.identity;
    const id = me.id;
    if (f.t === 'hello' && !c.theirNonce) {
      if (f.v !== TEAM_PROTOCOL_VERSION)
        return this.close(c, CloseCodes.VERSION, `protocol ${f.v} not supported (this side speaks ${TEAM_PROTOCOL_VERSION})`);
      if (this.team !== null && f.team !== this.team) return this.close(c, CloseCodes.WRONG_TEAM, 'wrong team');
      if (f.agent === id) return this.close(c, CloseCodes.DUPLICATE_AGENT, 'connected to itself');
      if (this.nonces.seen(f.nonce)) return this.close(c, CloseCodes.AUTH_FAILED, 'replayed hello');
      c.theirNonce = f.nonce;
      c.agent = f.agent;
      c.team = f.team;
      c.theirKey = f.key;
      const proof = serverProof(this.keyFor(f.team), f.team, f.nonce, c.myNonce, id, f.agent);
      const sig = me.sign(handshakeBytes('server', f.team, [f.nonce, c.myNonce, id, f.agent]));
      this.o.links.send(c, {
        t: 'challenge',
        v: TEAM_PROTOCOL_VERSION,
        team: f.team,
        agent: id,
        nonce: c.myNonce,
        proof,
        key: me.key,
        sig,
      });
      return;
    }
    if (f.t === 'auth' && c.theirNonce && c.agent && c.team && c.theirKey) {
      const want = clientProof(this.keyFor(c.team), c.team, c.myNonce, c.theirNonce, c.agent, id);
      if (!proofEquals(f.proof, want)) return this.close(c, CloseCodes.AUTH_FAILED, 'authentication failed');
      const bytes = handshakeBytes('client', c.team, [c.myNonce, c.theirNonce, c.agent, id]);
      const bad = this.o.keys.verify(c.agent, c.theirKey, bytes, f.sig);
      if (bad) return this.close(c, CloseCodes.AUTH_FAILED, `peer ${c.agent} offered ${bad}`);
      if (this.team === null) {
        this.team = c.team;
        this.o.log(`[team] serving team ${c.team}`);
      } else if (this.team !== c.team) {
        return this.close(c, CloseCodes.WRONG_TEAM, 'wrong team');
      }
      this.o.links.send(c, { t: 'welcome' });
      return this.o.established(c);
    }
    return this.close(c, CloseCodes.AUTH_FAILED, `unexpected ${f.t} before authentication`);
  }

  private dialing(c: Conn, f: Frame): void {
    const team = this.team!;
    const key = this.keyFor(team);
    const me = this.o.identity;
    if (f.t === 'challenge' && !c.theirNonce) {
      if (f.v !== TEAM_PROTOCOL_VERSION) return this.close(c, CloseCodes.VERSION, `protocol ${f.v} not supported`);
      if (f.team !== team) return this.close(c, CloseCodes.WRONG_TEAM, 'wrong team');
      const want = serverProof(key, team, c.myNonce, f.nonce, f.agent, me.id);
      if (!proofEquals(f.proof, want)) return this.close(c, CloseCodes.AUTH_FAILED, 'the relay does not know the team secret');
      const bad = this.o.keys.verify(f.agent, f.key, handshakeBytes('server', team, [c.myNonce, f.nonce, f.agent, me.id]), f.sig);
      if (bad) return this.close(c, CloseCodes.AUTH_FAILED, `the relay offered ${bad}`);
      c.theirNonce = f.nonce;
      c.agent = f.agent;
      c.theirKey = f.key;
      const sig = me.sign(handshakeBytes('client', team, [f.nonce, c.myNonce, me.id, f.agent]));
      this.o.links.send(c, { t: 'auth', proof: clientProof(key, team, f.nonce, c.myNonce, me.id, f.agent), sig });
      return;
    }
    if (f.t === 'welcome' && c.theirNonce) return this.o.established(c);
    return this.close(c, CloseCodes.AUTH_FAILED, `unexpected ${f.t} before authentication`);
  }
}
