/**
 * Unit tests for what makes a teammate speak only for itself and claim only so much: agent keys
 * and ids (identity.ts), the admission of unauthenticated connections (admission.ts), limits from
 * the environment, the refusal log, the presence table, the choice of a pull source, and the HLC's
 * logical counter staying within bounds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Identity, KeyRing, AGENT_KEY_ID_RE, agentIdOf, createIdentity, loadIdentity, readIdentity } from '../../daemon/team/identity';
import { Admission, addressGroup } from '../../daemon/team/admission';
import { limitsFromEnv } from '../../daemon/team/limits';
import { RefusalLog } from '../../daemon/team/refusals';
import { Presences } from '../../daemon/team/presences';
import { pickSource } from '../../daemon/team/pull';
import { HlcClock } from '../../daemon/team/hlc';
import { MAX_LOGICAL, Presence, TeamEvent, canonicalJson, checkFrame } from '../../protocol/team';
import type { Conn } from '../../daemon/team/links';

const TEAM = 'acme';

function unsignedEvent(origin: string, seq = 1): Omit<TeamEvent, 'key' | 'sig'> {
  return {
    origin,
    seq,
    tag: { wall: 1000, logical: 0, agent: origin },
    writes: [{ key: 'layer:gcc', value: { active: true } }],
    user: 'u',
    host: 'h',
    prev: [{ key: 'layer:gcc', value: { active: false } }],
  };
}

function presenceOf(agent: string, pseq: number): Omit<Presence, 'key' | 'sig'> {
  return { agent, pseq, user: 'u', host: 'h', active: [], held: [], applied: {}, busy: [], has: {}, at: pseq };
}

describe('team trust: agent keys and ids', () => {
  it('derives a readable id from the key: 32 base32 characters in groups of 8', () => {
    const a = Identity.generate();
    assert.match(a.id, AGENT_KEY_ID_RE);
    assert.equal(a.id, agentIdOf(Buffer.from(a.key, 'base64url')));
    assert.notEqual(Identity.generate().id, a.id);
    assert.equal(agentIdOf(Buffer.alloc(32)), agentIdOf(Buffer.alloc(32)), 'a function of the key only');
  });

  it('signs events and presence that verify, and checkFrame accepts', () => {
    const a = Identity.generate();
    const ring = new KeyRing();
    const ev = a.signEvent(TEAM, unsignedEvent(a.id));
    assert.equal(ring.verifyEvent(TEAM, ev), null);
    assert.ok(checkFrame(JSON.stringify({ t: 'event', event: ev })).ok);
    // A copy re-serialized in another key order verifies too: the signature covers canonical JSON.
    const reordered = Object.fromEntries(Object.entries(ev).reverse()) as TeamEvent;
    assert.notEqual(JSON.stringify(reordered), JSON.stringify(ev));
    assert.equal(canonicalJson(reordered), canonicalJson(ev));
    assert.equal(ring.verifyEvent(TEAM, reordered), null);
    const p = a.signPresence(TEAM, presenceOf(a.id, 5));
    assert.equal(ring.verifyPresence(TEAM, p), null);
  });

  it("refuses an event in another agent's name, a changed event, another team's event", () => {
    const alice = Identity.generate();
    const mallory = Identity.generate();
    const ring = new KeyRing();
    // Mallory signs with her key but claims Alice's id: the key's fingerprint is not Alice's id.
    const forged = mallory.signEvent(TEAM, unsignedEvent(alice.id));
    assert.match(ring.verifyEvent(TEAM, forged) ?? '', /a key whose fingerprint is not/);
    // ...or carries Alice's key with her own signature.
    assert.match(ring.verifyEvent(TEAM, { ...forged, key: alice.key }) ?? '', /a signature that does not verify/);
    const good = alice.signEvent(TEAM, unsignedEvent(alice.id));
    assert.match(ring.verifyEvent(TEAM, { ...good, seq: 2 ** 40 }) ?? '', /does not verify/);
    assert.match(ring.verifyEvent(TEAM, { ...good, tag: { ...good.tag, wall: 2 } }) ?? '', /does not verify/);
    assert.match(ring.verifyEvent('other-team', good) ?? '', /does not verify/);
    const p = mallory.signPresence(TEAM, presenceOf(alice.id, 9));
    assert.match(new KeyRing().verifyPresence(TEAM, p) ?? '', /fingerprint is not/);
    assert.match(ring.verifyPresence(TEAM, p) ?? '', /a different key than the one pinned/);
  });

  it('pins a key per id and refuses another one for it', () => {
    const a = Identity.generate();
    const ring = new KeyRing(2);
    assert.equal(ring.verifyEvent(TEAM, a.signEvent(TEAM, unsignedEvent(a.id))), null);
    // Another key claimed for a pinned id (a fingerprint collision, were one found) is refused.
    const other = Identity.generate();
    const ev = other.signEvent(TEAM, unsignedEvent(a.id));
    assert.match(ring.verifyEvent(TEAM, ev) ?? '', /a different key than the one pinned/);
    for (let i = 0; i < 3; i++) {
      const x = Identity.generate();
      ring.verifyEvent(TEAM, x.signEvent(TEAM, unsignedEvent(x.id)));
    }
    assert.equal(ring.size, 2, 'bounded');
    assert.match(ring.verify(a.id, 'AAAA', Buffer.from('x'), 'x'.repeat(86)) ?? '', /not 32 bytes/);
  });

  it('keeps the key in a 0600 file, and refuses one others can read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-key-'));
    try {
      const file = path.join(dir, 'team.key');
      assert.equal(loadIdentity(file), null);
      const made = createIdentity(file);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.equal(readIdentity(file).id, made.id);
      fs.chmodSync(file, 0o644);
      assert.throws(() => readIdentity(file), /accessible by group or others; run: chmod 600/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('team trust: admission of unauthenticated connections', () => {
  const limits = { maxPending: 4, maxPendingPerAddress: 2, authTimeoutMs: 60_000, busyAuthTimeoutMs: 30_000 };

  it('groups addresses: IPv4 (mapped too) as is, IPv6 by /64', () => {
    assert.equal(addressGroup('10.0.0.7'), '10.0.0.7');
    assert.equal(addressGroup('::ffff:10.0.0.7'), '10.0.0.7');
    assert.equal(addressGroup('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(addressGroup('2001:db8:1:2::9'), '2001:db8:1:2::/64');
    assert.equal(addressGroup('::1'), '0:0:0:0::/64');
  });

  it('holds at most its share per address, and evicts the busiest address for a newcomer', () => {
    const a = new Admission(limits);
    const dropped: string[] = [];
    const slot = (addr: string, name: string) => a.admit(addr, (why) => dropped.push(`${name} ${why}`));
    const f1 = slot('10.0.0.1', 'f1');
    const f2 = slot('10.0.0.1', 'f2');
    assert.ok(f1 && f2);
    assert.equal(slot('10.0.0.1', 'f3'), null, 'the flooding address holds its share already');
    assert.ok(slot('10.0.0.2', 'g1') && slot('10.0.0.2', 'g2'));
    assert.equal(a.pending, 4);
    // Full: a newcomer from a quiet address takes the oldest slot of a busier one.
    const legit = slot('10.0.0.9', 'legit');
    assert.ok(legit);
    assert.deepEqual(dropped, ['f1 evicted']);
    assert.equal(a.pending, 4);
    // An address as busy as the others gets nothing by eviction.
    assert.equal(slot('10.0.0.9', 'legit2'), null);
    a.release(legit!);
    assert.equal(a.pending, 3);
    assert.equal(a.release(legit!), false, 'released once');
    assert.equal(a.evicted, 1);
    assert.equal(a.refused, 2);
  });
});

describe('team trust: limits, refusal log, presences, pull sources, HLC bounds', () => {
  it('reads limits from STRATA_TEAM_* and ignores nonsense', () => {
    const logs: string[] = [];
    const l = limitsFromEnv({ STRATA_TEAM_MAX_LAYER_BYTES: '1024', STRATA_TEAM_MAX_ORIGINS: 'lots', STRATA_TEAM_MAX_SKEW_MS: '-5' }, (m) =>
      logs.push(m),
    );
    assert.deepEqual(l, { maxLayerBytes: 1024 });
    assert.equal(logs.length, 2);
  });

  it('logs at most a burst of refusals per window, then counts the rest', () => {
    let t = 0;
    const lines: string[] = [];
    const r = new RefusalLog(
      (m) => lines.push(m),
      3,
      1000,
      () => t,
    );
    for (let i = 0; i < 10; i++) r.refuse(`frame ${i}`, 'bad');
    assert.equal(lines.length, 3);
    t = 1000;
    r.refuse('frame 10', 'bad');
    assert.deepEqual(lines.slice(3), ['[team] refused 7 more frames in the last 1 s', '[team] refused frame 10: bad']);
    assert.equal(r.total, 11);
  });

  it('keeps the newest presence per agent, at most max agents, forgetting the least recently heard', () => {
    const t = new Presences(2);
    const c = {} as Conn;
    const p = (agent: string, pseq: number) => ({ ...presenceOf(agent, pseq), key: 'k'.repeat(43), sig: 's'.repeat(86) });
    t.keep(p('a', 1), c, 10);
    assert.equal(t.isNewer(p('a', 1)), false);
    assert.equal(t.isNewer(p('a', 2)), true);
    t.keep(p('b', 1), c, 11);
    t.keep(p('a', 2), c, 12);
    t.keep(p('c', 1), c, 13);
    assert.deepEqual([...t.byAgent.keys()], ['a', 'c']);
    assert.equal(t.routes.has('b'), false);
    assert.equal(t.heardAt('a'), 12);
    t.linkClosed(c);
    assert.equal(t.routes.size, 0);
  });

  it('pulls from a direct, recently heard teammate that has not failed; never from a departed one', () => {
    const now = 100_000;
    const c = (agent: string, direct: boolean, heardAt: number, failedUntil = 0) => ({ agent, direct, heardAt, failedUntil });
    assert.equal(pickSource([c('relayed', false, now - 1), c('direct', true, now - 5000)], now, 30_000)?.agent, 'direct');
    assert.equal(pickSource([c('gone', true, now - 60_000), c('here', false, now - 1000)], now, 30_000)?.agent, 'here');
    assert.equal(pickSource([c('bad', true, now, now + 1), c('ok', false, now - 10)], now, 30_000)?.agent, 'ok');
    assert.equal(pickSource([c('gone', true, now - 60_000)], now, 30_000), null);
  });

  it("keeps the HLC's logical counter within what the schema accepts", () => {
    const clock = new HlcClock('a', () => 5);
    clock.observe({ wall: 5, logical: MAX_LOGICAL, agent: 'b' });
    const t = clock.tick();
    assert.deepEqual(t, { wall: 6, logical: 0, agent: 'a' });
  });
});
