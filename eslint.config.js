import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['dist/**', 'release/**', 'node_modules/**', 'test/standin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // No import cycles in the product code (a cycle hides which module depends on which).
    files: ['src-main/**', 'src-shared/**', 'src-renderer/**', 'src-preload/**'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.tsx', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: ['tsconfig.node.json', 'tsconfig.web.json'], noWarnOnMultipleProjects: true })],
    },
    rules: { 'import-x/no-cycle': 'error' },
  },
  {
    // What main and renderer share runs in both: no Node, no main or renderer code.
    files: ['src-shared/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: builtinModules.map((name) => ({ name, message: 'src-shared runs in the renderer too: no Node modules.' })),
          patterns: [
            { group: ['node:*'], message: 'src-shared runs in the renderer too: no Node modules.' },
            { group: ['**/src-main/**', '**/src-renderer/**', 'electron'], message: 'src-shared imports only src-shared.' },
          ],
        },
      ],
    },
  },
  {
    // The manager core runs in plain Node (CLI, tests) and knows nothing of the CLI or the Electron shell.
    files: ['src-main/core/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'The manager core must not import electron.' }],
          patterns: [{ group: ['**/app/*', '**/cli/*', '**/cli.js'], message: 'The manager core must not import the CLI or the app.' }],
        },
      ],
    },
  },
  {
    // The CLI and the bench may use the core, not the app.
    files: ['src-main/cli/**', 'src-main/cli.ts', 'bench/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'electron', message: 'The CLI must not import electron.' }], patterns: [{ group: ['**/app/*'], message: 'The CLI must not import the app.' }] },
      ],
    },
  },
  {
    // The app modules and the tests use Electron's types only: src-main/index.ts passes the real APIs in
    // (loading electron outside Electron tries a download and fails).
    files: ['src-main/app/**', 'test/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'electron', allowTypeImports: true, message: 'Only src-main/index.ts and the preload load electron; use `import type`.' }] },
      ],
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
