/** The warm-up's bounds from the environment (views.ts). */
import assert from 'node:assert/strict';
import { DEFAULT_WARM, warmFromEnv } from '../../daemon/fuse/views';

describe('view warm-up bounds', () => {
  it('takes STRATA_VIEW_WARM_MS and _NAMES; 0 turns it off; nonsense is an error naming the variable', () => {
    assert.deepEqual(warmFromEnv({}), DEFAULT_WARM);
    assert.deepEqual(warmFromEnv({ STRATA_VIEW_WARM_MS: '0', STRATA_VIEW_WARM_NAMES: '10' }), { ms: 0, names: 10 });
    assert.throws(() => warmFromEnv({ STRATA_VIEW_WARM_MS: '1.5s' }), /STRATA_VIEW_WARM_MS=1.5s: expected a whole number/);
    assert.throws(() => warmFromEnv({ STRATA_VIEW_WARM_NAMES: '-1' }), /STRATA_VIEW_WARM_NAMES=-1/);
  });
});
