/**
 * Unit tests for the hybrid logical clock (daemon/team/hlc.ts), driven by a fake clock.
 */
import assert from 'node:assert/strict';
import type { Hlc } from '../../protocol/team';
import { HlcClock, compareHlc } from '../../daemon/team/hlc';
import { mulberry32 as prng } from '../prng';

/** A settable fake wall clock. */
function fakeClock(start = 1_000_000): { now: () => number; set: (t: number) => void; advance: (d: number) => void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v), advance: (d) => (t += d) };
}

const hlc = (wall: number, logical: number, agent: string): Hlc => ({ wall, logical, agent });

describe('team: compareHlc', () => {
  it('orders by wall first', () => {
    assert.ok(compareHlc(hlc(1, 9, 'z'), hlc(2, 0, 'a')) < 0);
    assert.ok(compareHlc(hlc(2, 0, 'a'), hlc(1, 9, 'z')) > 0);
  });
  it('then by logical', () => {
    assert.ok(compareHlc(hlc(5, 1, 'z'), hlc(5, 2, 'a')) < 0);
    assert.ok(compareHlc(hlc(5, 2, 'a'), hlc(5, 1, 'z')) > 0);
  });
  it('then by agent id (string order)', () => {
    assert.ok(compareHlc(hlc(5, 1, 'alice'), hlc(5, 1, 'bob')) < 0);
    assert.ok(compareHlc(hlc(5, 1, 'bob'), hlc(5, 1, 'alice')) > 0);
    assert.ok(compareHlc(hlc(5, 1, 'B'), hlc(5, 1, 'a')) < 0, 'plain code-unit order, not locale order');
  });
  it('is 0 only for identical timestamps', () => {
    assert.equal(compareHlc(hlc(5, 1, 'a'), hlc(5, 1, 'a')), 0);
  });
});

describe('team: HlcClock', () => {
  it('follows the wall clock when it advances', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    assert.deepEqual(clock.tick(), hlc(1000, 0, 'a'));
    c.advance(5);
    assert.deepEqual(clock.tick(), hlc(1005, 0, 'a'));
  });

  it('counts logically while the wall clock stands still', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    assert.deepEqual([clock.tick(), clock.tick(), clock.tick()], [hlc(1000, 0, 'a'), hlc(1000, 1, 'a'), hlc(1000, 2, 'a')]);
  });

  it('never goes backwards when the wall clock does', () => {
    const c = fakeClock(5000);
    const clock = new HlcClock('a', c.now);
    const t1 = clock.tick();
    c.set(1000); // NTP step back
    const t2 = clock.tick();
    const t3 = clock.tick();
    assert.ok(compareHlc(t2, t1) > 0 && compareHlc(t3, t2) > 0);
    assert.equal(t3.wall, 5000);
    c.set(6000);
    assert.deepEqual(clock.tick(), hlc(6000, 0, 'a'));
  });

  it('orders ticks after an observed remote timestamp ahead of local time (skew within the limit)', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    const remote = hlc(31_000, 7, 'b'); // 30 s ahead
    assert.equal(clock.observe(remote), true);
    const t = clock.tick();
    assert.ok(compareHlc(t, remote) > 0, JSON.stringify(t));
    assert.equal(t.wall, 31_000);
  });

  it('orders ticks after a remote with equal wall and logical but a larger agent id', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    clock.tick();
    const remote = hlc(1000, 0, 'zzz');
    clock.observe(remote);
    assert.ok(compareHlc(clock.tick(), remote) > 0);
  });

  it('orders ticks after a remote with an equal wall and a higher logical counter', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('z', c.now);
    clock.tick();
    const remote = hlc(1000, 5, 'a');
    clock.observe(remote);
    assert.deepEqual(clock.tick(), hlc(1000, 6, 'z'));
  });

  it('ignores an older remote timestamp', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    clock.tick();
    clock.observe(hlc(10, 99, 'b'));
    assert.deepEqual(clock.tick(), hlc(1000, 1, 'a'));
  });

  it('does not adopt a remote wall more than maxDriftMs ahead, but merges its logical counter', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    clock.tick();
    assert.equal(clock.observe(hlc(1000 + 60_001, 40, 'b')), false);
    assert.equal(clock.driftRejections, 1);
    assert.equal(clock.last().wall, 1000);
    assert.deepEqual(clock.tick(), hlc(1000, 41, 'a'));
  });

  it('accepts a remote wall exactly maxDriftMs ahead, and honours a custom maxDriftMs', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    assert.equal(clock.observe(hlc(61_000, 0, 'b')), true);
    assert.equal(clock.tick().wall, 61_000);
    const strict = new HlcClock('a', c.now, { maxDriftMs: 10 });
    assert.equal(strict.observe(hlc(1011, 0, 'b')), false);
    assert.equal(strict.observe(hlc(1010, 0, 'b')), true);
    assert.equal(strict.tick().wall, 1010);
  });

  it('restores a persisted timestamp so ticks after a restart order after it', () => {
    const c = fakeClock(1000);
    const clock = new HlcClock('a', c.now);
    clock.restore(hlc(9000, 3, 'a'));
    assert.deepEqual(clock.tick(), hlc(9000, 4, 'a'));
    clock.restore(hlc(10, 0, 'a')); // older: no effect
    assert.deepEqual(clock.tick(), hlc(9000, 5, 'a'));
    assert.deepEqual(clock.last(), hlc(9000, 5, 'a'));
  });

  it('refuses a bad agent id and a malformed remote timestamp', () => {
    assert.throws(() => new HlcClock('', () => 0), /not a valid id/);
    assert.throws(() => new HlcClock('has space', () => 0), /not a valid id/);
    const clock = new HlcClock('a', () => 1000);
    assert.throws(() => clock.observe({ wall: -1, logical: 0, agent: 'b' }), /not an HLC/);
    assert.throws(() => clock.observe({ wall: 1, logical: 0.5, agent: 'b' }), /not an HLC/);
  });

  it('property: every tick exceeds everything issued or (sanely) observed, under a jumping clock and skewed peers', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const rnd = prng(seed);
      let t = 1_000_000;
      const clock = new HlcClock('m', () => t);
      let max: Hlc | null = null;
      for (let i = 0; i < 400; i++) {
        const r = rnd();
        if (r < 0.2)
          t -= Math.floor(rnd() * 5000); // steps back
        else if (r < 0.6) t += Math.floor(rnd() * 50);
        if (rnd() < 0.4) {
          const remote = hlc(Math.max(1, t + Math.floor((rnd() - 0.5) * 100_000)), Math.floor(rnd() * 5), rnd() < 0.5 ? 'a' : 'z');
          if (clock.observe(remote) && (!max || compareHlc(remote, max) > 0)) max = remote;
        } else {
          const ts = clock.tick();
          if (max) assert.ok(compareHlc(ts, max) > 0, `seed ${seed} step ${i}: ${JSON.stringify(ts)} <= ${JSON.stringify(max)}`);
          max = ts;
        }
      }
    }
  });
});
