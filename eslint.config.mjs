// ESLint: its recommended rules and typescript-eslint's (without type information, so `npm run lint`
// stays quick; `tsc` already checks the types). Formatting is prettier's job (.prettierrc.json).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The scripts' globals are those of the Node that runs the linter: the scripts run on the same Node.
const nodeGlobals = Object.fromEntries(Object.getOwnPropertyNames(globalThis).map((name) => [name, 'readonly']));

export default defineConfig(
  globalIgnores(['dist/', 'build/', '.tools/', 'node_modules/', 'test-artifacts/', '.bench/']),
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  tseslint.configs.recommended,
  // Plain JavaScript: Node scripts (tsc does not see them, so no-undef stays on for them).
  { files: ['**/*.{js,mjs,cjs}'], languageOptions: { globals: nodeGlobals } },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // Functions passed to page.evaluate() run in the browser page.
  {
    files: ['demo/browser/workbench.mjs'],
    languageOptions: { globals: { document: 'readonly', window: 'readonly', MutationObserver: 'readonly' } },
  },
);
