// Bundles the programs and the tests with esbuild; type checking is tsc's job (test/run.mjs typecheck).
import { build } from 'esbuild';
import { chmodSync, readdirSync } from 'fs';
import { join } from 'path';

const node = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  external: ['*.node', 'vscode'],
};

/** Every *.test.ts under dir. */
function tests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tests(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

await Promise.all([
  build({
    ...node,
    outdir: 'dist',
    entryPoints: {
      agent: 'daemon/main.ts',
      relay: 'daemon/relay-main.ts', // the standalone relay, run by `strata relay`
      cli: 'cli/main.ts',
      extension: 'extension/extension.ts', // the VS Code extension (host side)
      demo: 'demo/main.ts',
      bench: 'bench/fs.ts',
      'bench-team': 'bench/team.ts',
      'bench-extension': 'bench/extension.ts',
    },
  }),
  build({ ...node, entryPoints: tests('test'), outdir: 'dist/test', outbase: 'test' }),
  // The extension-host test suite; mocha comes from node_modules at run time.
  build({
    ...node,
    external: [...node.external, 'mocha'],
    entryPoints: { 'test-ext/suite/index': 'test/extension/suite/index.ts' },
    outdir: 'dist',
  }),
  // The Layer Editor page (browser side).
  build({ ...node, platform: 'browser', format: 'iife', target: 'es2022', entryPoints: { webview: 'webview/main.ts' }, outdir: 'dist' }),
]);
chmodSync('dist/cli.js', 0o755);
