// `npm run lint` (and `npm test`, after tsc): typescript-eslint with type information.
// The rules that guard the design: no import cycles, no promise left floating, every switch
// over a union handles each member, and no Atomics.wait (every skein thread owns sockets, and
// a blocked thread freezes its event loop: use Atomics.waitAsync or notify-then-drain).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const atomicsWait = 'Atomics.wait blocks the thread and every socket it owns: use Atomics.waitAsync';

export default defineConfig(
  { ignores: ['node_modules/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    rules: {
      // Our errors copy the cause's text into nats-server's wording; a `cause` would only add noise.
      'preserve-caught-error': 'off',
      // A `let x = 0` that a loop or a try overwrites reads better than a bare `let x: number`.
      'no-useless-assignment': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      // no-cycle follows an import only into a file it can parse: say that .ts files are ours.
      'import-x/extensions': ['.ts', '.js', '.cjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js', '.cjs', '.json'] })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      // Also catches `Atomics['wait']` and `const { wait } = Atomics`.
      'no-restricted-properties': ['error', { object: 'Atomics', property: 'wait', message: atomicsWait }],
      // Off, each with its reason:
      // tsc's noUnusedLocals/noUnusedParameters already check this (and honour the `_` prefix).
      '@typescript-eslint/no-unused-vars': 'off',
      // String(v) on a JSON/YAML/monitor value of type unknown is deliberate; it is all this finds.
      '@typescript-eslint/no-base-to-string': 'off',
      // An async method that implements a promise-returning interface needs no await.
      '@typescript-eslint/require-await': 'off',
      // Arrays print as `1,2,3` in a message, which is what we want there.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowArray: true, allowNumber: true, allowBoolean: true, allowNullish: true },
      ],
    },
  },
  {
    // Tests and benchmarks: the design rules above hold, the type-safety ones are noise here.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Parsed JSON (monitor endpoints, INFO), page.$$eval and fixtures are `any` by nature.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // `const { output, waitForLog } = srv` passes closures, not prototype methods.
      '@typescript-eslint/unbound-method': 'off',
      // Helpers stop what runs with Promise.all over `promise | undefined`.
      '@typescript-eslint/await-thenable': 'off',
      // Messages print unknown values and chunks as they are.
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
      // Tests escape control bytes for display on purpose.
      'no-control-regex': 'off',
    },
  },
  {
    // The CommonJS launcher and hooks run before any TypeScript can: plain Node globals.
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        console: 'readonly',
        __dirname: 'readonly',
        __filename: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
      },
    },
    extends: [tseslint.configs.disableTypeChecked],
    rules: {
      // CommonJS by design: the launcher must run on any Node to say which one it needs.
      '@typescript-eslint/no-require-imports': 'off',
      // `catch (e)` without a use: the launcher avoids optional catch binding for old Nodes.
      '@typescript-eslint/no-unused-vars': ['error', { caughtErrors: 'none' }],
    },
  },
  {
    // The pool threads' entry: plain JavaScript so that loading it needs no type stripper.
    files: ['workers/boot.mjs'],
    languageOptions: { globals: { Buffer: 'readonly', URL: 'readonly' } },
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['eslint.config.js', 'prettier.config.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
