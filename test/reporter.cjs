// Mocha's spec output plus a machine-readable tally for test/run.mjs.
const Mocha = require('mocha');
const fs = require('fs');

class TallyReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const failures = [];
    runner.on('fail', (test, err) => failures.push({ title: test.fullTitle(), error: String(err && err.message).slice(0, 500) }));
    runner.once('end', () => {
      const out = process.env.STRATA_TALLY;
      if (!out) return;
      const s = runner.stats || {};
      fs.writeFileSync(out, JSON.stringify({ passed: s.passes || 0, failed: s.failures || 0, skipped: s.pending || 0, failures }));
    });
  }
}
module.exports = TallyReporter;
