// Bundles the agent, the CLI and the tests with esbuild; type checking is tsc's job (npm test).
import { build } from 'esbuild';
import { readdirSync, existsSync, chmodSync } from 'fs';
import { join } from 'path';

const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', sourcemap: 'linked', logLevel: 'warning', external: ['*.node', 'vscode'] };

function tests(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tests(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []);
}

await Promise.all([
  build({ ...common, entryPoints: { agent: 'daemon/main.ts', relay: 'daemon/relay-main.ts', cli: 'cli/main.ts' }, outdir: 'dist' }),
  build({ ...common, entryPoints: tests('test'), outdir: 'dist/test', outbase: 'test' }),
  existsSync('bench/fs.ts') ? build({ ...common, entryPoints: { bench: 'bench/fs.ts' }, outdir: 'dist' }) : null,
  existsSync('bench/team.ts') ? build({ ...common, entryPoints: { 'bench-team': 'bench/team.ts' }, outdir: 'dist' }) : null,
  build({ ...common, entryPoints: { demo: 'demo/main.ts' }, outdir: 'dist' }),
  existsSync('bench/extension.ts') ? build({ ...common, entryPoints: { 'bench-extension': 'bench/extension.ts' }, outdir: 'dist' }) : null,
  // The VS Code extension (host side), its webview (browser side), and its extension-host test suite (mocha from node_modules).
  build({ ...common, entryPoints: { extension: 'extension/extension.ts' }, outdir: 'dist' }),
  build({ ...common, platform: 'browser', format: 'iife', target: 'es2022', entryPoints: { webview: 'webview/main.ts' }, outdir: 'dist' }),
  build({ ...common, external: [...common.external, 'mocha'], entryPoints: { 'test-ext/suite/index': 'test/extension/suite/index.ts' }, outdir: 'dist' }),
]);
chmodSync('dist/cli.js', 0o755);
