// ESLint flat config for the dashboard (frontend/): browser ES modules, no build step.
// `make lint` runs it (node_modules/.bin/eslint) beside ruff; see package.json for the
// pinned versions.

import js from '@eslint/js';
import globals from 'globals';

/** Assignments and calls that would parse text as HTML: names from the data are text only. */
const HTML_SINKS = [
  {
    selector: "AssignmentExpression > MemberExpression.left[property.name=/^(innerHTML|outerHTML)$/]",
    message: 'Names from the data reach the page as text only: use textContent or dom.js h().',
  },
  {
    selector: "CallExpression[callee.property.name=/^(insertAdjacentHTML|write|writeln)$/]",
    message: 'Names from the data reach the page as text only: use textContent or dom.js h().',
  },
];

export default [
  { ignores: ['.venv/**', 'node_modules/**', 'build/**', 'dist/**', 'artifacts/**', 'demo/logs/**'] },
  js.configs.recommended,
  {
    files: ['frontend/**/*.js'],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: globals.browser,
    },
    rules: {
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-var': 'error',
      'prefer-const': 'error',
      'no-shadow': 'error',
      'no-unused-vars': ['error', { args: 'after-used', caughtErrors: 'none' }],
      'no-implicit-globals': 'error',
      'no-restricted-syntax': ['error', ...HTML_SINKS],
      'no-eval': 'error',
      'no-new-func': 'error',
      // Modules that read in one sitting (README, Development).
      'max-lines': ['error', { max: 400, skipBlankLines: false, skipComments: false }],
    },
  },
  {
    files: ['eslint.config.js'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
];
