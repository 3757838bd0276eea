// `npm run format` / `npm run format:check`: Prettier, set to today's hand style (single quotes,
// semicolons, trailing commas, `(x) =>`, lines up to ~140 columns). Code only: Markdown (the
// README's generated tables), the example configs and the lock file keep their own layout.
/** @type {import('prettier').Config} */
export default {
  printWidth: 140,
  singleQuote: true,
  semi: true,
  trailingComma: 'all',
  arrowParens: 'always',
  bracketSpacing: true,
  objectWrap: 'preserve',
};
