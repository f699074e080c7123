/**
 * The extension-host test entry (`extensionTestsPath`): runs every suite inside a real VS Code
 * extension host and writes the verdict to a JSON file — the host's exit status says nothing about
 * failures. Resolves even when tests fail.
 *
 * Test files are bundled in: each exports a function that declares its `describe` blocks, called
 * once Mocha has put its BDD globals in place.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import Mocha from 'mocha';
import { activationTests, startupTests } from './activation.ext';
import { followTests } from './follow.ext';
import { editorTests } from './editor.ext';
import { logicTests } from './logic.ext';
import { reconnectTests } from './reconnect.ext';
import { switchingTests } from './switching.ext';
import { teamTests } from './team.ext';

export interface Results {
  passed: number;
  failed: number;
  skipped: number;
  failures: { title: string; error: string }[];
  /** Every test in run order, for the runner's listing. */
  tests: { title: string; state: 'passed' | 'failed' | 'skipped' }[];
}

export function resultsFile(): string {
  return process.env.STRATA_EXT_RESULTS || path.join(os.tmpdir(), 'strata-ext-results.json');
}

export function run(): Promise<void> {
  const results: Results = { passed: 0, failed: 0, skipped: 0, failures: [], tests: [] };
  const write = (): void => {
    try {
      fs.mkdirSync(path.dirname(resultsFile()), { recursive: true });
      fs.writeFileSync(resultsFile(), JSON.stringify(results, null, 2) + '\n');
    } catch (e) {
      console.error(`strata ext tests: cannot write ${resultsFile()}: ${(e as Error).message}`);
    }
  };
  return new Promise((resolve) => {
    try {
      const mocha = new Mocha({ ui: 'bdd', timeout: 60000, color: false, reporter: 'spec' });
      mocha.suite.emit('pre-require', globalThis, 'strata-extension-suite', mocha);
      startupTests(); // first: before any suite starts the agent
      logicTests();
      activationTests();
      switchingTests();
      followTests();
      editorTests();
      teamTests();
      reconnectTests(); // last: it stops and restarts the agent
      const runner = mocha.run(() => {
        write();
        resolve();
      });
      runner.on('pass', (test) => {
        results.passed++;
        results.tests.push({ title: test.fullTitle(), state: 'passed' });
      });
      runner.on('pending', (test) => {
        results.skipped++;
        results.tests.push({ title: test.fullTitle(), state: 'skipped' });
      });
      runner.on('fail', (test, err: Error) => {
        results.failed++;
        results.tests.push({ title: test.fullTitle(), state: 'failed' });
        results.failures.push({ title: test.fullTitle(), error: String(err?.stack ?? err) });
      });
    } catch (e) {
      results.failed++;
      results.failures.push({ title: 'extension test suite set-up', error: String((e as Error)?.stack ?? e) });
      write();
      resolve();
    }
  });
}
