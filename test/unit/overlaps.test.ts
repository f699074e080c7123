/** Equal-priority overlaps: found where two active layers claim a path, the winner as the resolver picks it. */
import assert from 'node:assert/strict';
import { LayerRules, equalPriorityOverlaps, overlapText } from '../../shared/overlaps';

function layer(name: string, priority: number, originals: string[], more: Partial<LayerRules> = {}): LayerRules {
  return { name, priority, active: true, mappings: originals.map((original) => ({ original })), excludes: [], deletes: [], ...more };
}

describe('overlaps: active layers of equal priority claiming one path', () => {
  it('names the winner by the tie rule (the name sorted first), whatever the order given', () => {
    const a = layer('node20', 100, ['/tools/node']);
    const b = layer('node18', 100, ['/tools/node']);
    for (const ls of [
      [a, b],
      [b, a],
    ]) {
      assert.deepEqual(equalPriorityOverlaps(ls), [{ path: '/tools/node', priority: 100, winner: 'node18', losers: ['node20'] }]);
    }
    assert.equal(
      overlapText(equalPriorityOverlaps([a, b])[0]),
      'at /tools/node: node18 wins over node20 (both priority 100: a tie goes to the name sorted first)',
    );
  });

  it('finds a deeper mapping inside a wider one, once, and not below it again', () => {
    const wide = layer('a-wide', 100, ['/']);
    const deep = layer('b-deep', 100, ['/tools/x', '/tools/x/sub']);
    assert.deepEqual(equalPriorityOverlaps([deep, wide]), [{ path: '/tools/x', priority: 100, winner: 'a-wide', losers: ['b-deep'] }]);
  });

  it('reports nothing across priorities, for inactive layers, disjoint paths, or where an exclude steps aside', () => {
    assert.deepEqual(equalPriorityOverlaps([layer('a', 100, ['/x']), layer('b', 200, ['/x'])]), []);
    assert.deepEqual(equalPriorityOverlaps([layer('a', 100, ['/x']), layer('b', 100, ['/x'], { active: false })]), []);
    assert.deepEqual(equalPriorityOverlaps([layer('a', 100, ['/x']), layer('b', 100, ['/y'])]), []);
    assert.deepEqual(equalPriorityOverlaps([layer('a', 100, ['/x'], { excludes: ['/x'] }), layer('b', 100, ['/x'])]), []);
  });

  it('lists every tied loser, and only those of the winning priority', () => {
    const ls = [layer('c', 100, ['/x']), layer('b', 100, ['/x']), layer('a', 100, ['/x']), layer('z', 50, ['/x'])];
    assert.deepEqual(equalPriorityOverlaps(ls), [{ path: '/x', priority: 100, winner: 'a', losers: ['b', 'c'] }]);
    assert.match(overlapText(equalPriorityOverlaps(ls)[0]), /a wins over b, c \(all priority 100/);
  });
});
