/**
 * Layer prerequisites (shared/requires.ts): the closure a switch brings in, what refuses a
 * deactivation, and cycles.
 */
import assert from 'node:assert/strict';
import { cycleThrough, requiredBy, requirementClosure, withRequires } from '../../shared/requires';

/** A store: layer -> what it requires. */
function store(s: Record<string, string[]>) {
  return (n: string) => (Object.prototype.hasOwnProperty.call(s, n) ? s[n] : undefined);
}

describe('requires: requirementClosure', () => {
  it('puts each requirement before what requires it, transitively, once', () => {
    const s = store({ maven: ['jdk'], gradle: ['jdk', 'kotlin'], kotlin: ['jdk'], jdk: [] });
    assert.deepEqual(requirementClosure(['maven'], s), { order: ['jdk', 'maven'], missing: [] });
    assert.deepEqual(requirementClosure(['gradle', 'maven'], s).order, ['jdk', 'kotlin', 'gradle', 'maven']);
  });

  it('leaves a layer without requirements alone', () => {
    assert.deepEqual(requirementClosure(['a', 'b'], store({ a: [], b: [] })), { order: ['a', 'b'], missing: [] });
  });

  it('names a missing requirement with the layer requiring it', () => {
    const r = requirementClosure(['maven'], store({ maven: ['tools'], tools: ['jdk'] }));
    assert.deepEqual(r.missing, [{ name: 'jdk', by: 'tools' }]);
    assert.deepEqual(r.order, ['tools', 'maven']);
  });

  it('does not report a named layer that is missing (the caller says it is unknown)', () => {
    assert.deepEqual(requirementClosure(['nope'], store({})), { order: [], missing: [] });
  });

  it('ends on a cycle from a hand-edited layer.json', () => {
    const r = requirementClosure(['a'], store({ a: ['b'], b: ['c'], c: ['a'] }));
    assert.deepEqual(r.order, ['c', 'b', 'a']);
  });
});

describe('requires: requiredBy', () => {
  const s = store({ maven: ['jdk'], gradle: ['jdk'], jdk: [], node: [] });

  it('names the staying layers that require a leaving one', () => {
    assert.deepEqual([...requiredBy(['jdk'], ['maven', 'gradle', 'node'], s)], [['jdk', ['maven', 'gradle']]]);
  });

  it('is empty when the requiring layer leaves too, or requires nothing leaving', () => {
    assert.equal(requiredBy(['jdk', 'maven'], ['maven', 'jdk'], s).size, 0);
    assert.equal(requiredBy(['node'], ['maven', 'jdk', 'node'], s).size, 0);
  });
});

describe('requires: cycleThrough', () => {
  it('finds a cycle back to the start, as a path', () => {
    assert.deepEqual(cycleThrough('a', store({ a: ['b'], b: ['c'], c: ['a'] })), ['a', 'b', 'c', 'a']);
    assert.deepEqual(cycleThrough('a', store({ a: ['a'] })), ['a', 'a']);
  });

  it('finds none in a diamond, or through a cycle that does not reach the start', () => {
    assert.equal(cycleThrough('top', store({ top: ['l', 'r'], l: ['base'], r: ['base'], base: [] })), null);
    assert.equal(cycleThrough('a', store({ a: ['b'], b: ['c'], c: ['b'] })), null);
  });

  it('judges a spec about to be saved with its new requirements', () => {
    const s = store({ jdk: [], maven: ['jdk'] });
    assert.equal(cycleThrough('jdk', s), null);
    assert.deepEqual(cycleThrough('jdk', withRequires(s, 'jdk', ['maven'])), ['jdk', 'maven', 'jdk']);
  });

  it('ends on a long chain without recursion trouble', () => {
    const layers: Record<string, string[]> = {};
    for (let i = 0; i < 2000; i++) layers[`l${i}`] = i < 1999 ? [`l${i + 1}`] : [];
    assert.equal(cycleThrough('l0', store(layers)), null);
    assert.equal(requirementClosure(['l0'], store(layers)).order.length, 2000);
  });
});
