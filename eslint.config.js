// Lint: typescript-eslint's type-aware rules over the TypeScript (typed by tsconfig.test.json, which
// covers src/, test/ and bench/); formatting is prettier's, so eslint-config-prettier goes last.
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import {defineConfig} from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: [
      'dist/',
      'dist.next/',
      'dist.old/',
      'coverage/',
      '.tacos/',
      'gen/',
      'src/generated/',
      'third_party/',
      'templates/',
      'test/fixtures/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        project: './tsconfig.test.json',
        tsconfigRootDir: path.dirname(fileURLToPath(import.meta.url)),
      },
    },
    rules: {
      // Off for now: JSON off the wire and in tests is `any` until a schema types it (ajv at the
      // doors), and typing every such read is a change of its own, not a lint fix.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // An `async` function without `await` still turns a throw into a rejection, which callers rely on.
      '@typescript-eslint/require-await': 'off',
      // As tsc's noUnusedParameters: a leading underscore marks what is left out on purpose.
      // gRPC status codes arrive as plain numbers and are compared with @grpc/grpc-js's Status enum.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      // String(value) of request fields that are JSON scalars by then: the types cannot say so.
      '@typescript-eslint/no-base-to-string': 'off',
      // Passing on a caught value as the rejection keeps what was thrown.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', {allowThrowingUnknown: true}],
      // A variable a closure reads before its one assignment stays `let`.
      'prefer-const': ['error', {ignoreReadBeforeAssign: true}],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'},
      ],
    },
  },
  {
    // Plain JavaScript (the bin scripts, the build, the baseline scripts): not in a tsconfig, so no types.
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  prettier,
);
