/**
 * The layout README.md promises: each top-level folder imports only what its one-sentence
 * description allows, and protocol/ has no import cycle. Reads the sources; runs no code of theirs.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** Top-level folder -> the project folders it may import from (its own is always allowed). */
const ALLOWED: Record<string, string[]> = {
  protocol: [],
  shared: ['protocol'],
  daemon: ['protocol', 'shared'],
  cli: ['protocol', 'shared'],
  extension: ['protocol', 'shared'],
  webview: ['protocol'],
};
/** Packages a folder may import besides node: builtins. */
const PACKAGES: Record<string, string[]> = {
  protocol: ['valibot'],
  shared: ['valibot'],
  daemon: ['valibot', 'ws', '@nats-io'],
  cli: [],
  extension: ['vscode', 'valibot'],
  webview: ['valibot'],
};

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Import specifiers of a file: static imports and exports, dynamic import(), require(). */
export function specifiers(text: string): string[] {
  const out: string[] = [];
  const re =
    /(?:^|[^\w.])(?:import|export)\s[^;'"]*?from\s*['"]([^'"]+)['"]|(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

function topOf(file: string): string {
  return path.relative(ROOT, file).split(path.sep)[0];
}

function resolveRelative(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const cand of [base + '.ts', path.join(base, 'index.ts'), base]) if (fs.existsSync(cand) && fs.statSync(cand).isFile()) return cand;
  return base;
}

describe('layout: each folder imports only what README says', () => {
  it('finds imports of every form (the checker itself)', () => {
    const text =
      "import { a } from '../x';\nimport type { B } from \"../y\";\nexport * from './z';\nconst c = require('../w');\nvoid import('node:fs');\nimport 'side';\n";
    assert.deepEqual(specifiers(text).sort(), ['../w', '../x', '../y', './z', 'node:fs', 'side'].sort());
  });

  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    it(`${folder}/ imports only ${[folder, ...allowed].join(', ')}${PACKAGES[folder].length ? `, ${PACKAGES[folder].join(', ')}` : ''} and node builtins`, () => {
      const bad: string[] = [];
      for (const file of sources(path.join(ROOT, folder))) {
        for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
          if (spec.startsWith('.')) {
            const top = topOf(resolveRelative(file, spec));
            if (top !== folder && !allowed.includes(top)) bad.push(`${path.relative(ROOT, file)} imports ${spec} (${top}/)`);
          } else if (!spec.startsWith('node:') && !isBuiltin(spec) && !PACKAGES[folder].includes(spec.split('/')[0])) {
            bad.push(`${path.relative(ROOT, file)} imports package ${spec}`);
          }
        }
      }
      assert.deepEqual(bad, []);
    });
  }

  it('protocol/ has no import cycle', () => {
    const files = sources(path.join(ROOT, 'protocol'));
    const edges = new Map(
      files.map((f) => [
        f,
        specifiers(fs.readFileSync(f, 'utf8'))
          .filter((s) => s.startsWith('.'))
          .map((s) => resolveRelative(f, s)),
      ]),
    );
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, trail: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        cycles.push([...trail.slice(trail.indexOf(f)), f].map((x) => path.relative(ROOT, x)).join(' -> '));
        return;
      }
      state.set(f, 'visiting');
      for (const g of edges.get(f) ?? []) visit(g, [...trail, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    assert.deepEqual(cycles, []);
  });
});

function isBuiltin(spec: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node:module') as typeof import('node:module')).builtinModules.includes(spec.split('/')[0]);
}
