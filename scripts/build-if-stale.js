// Compiles TypeScript (and the native addon) only when a source is newer than the last build
// (`npm start`'s prestart): a start from an up-to-date dist/ costs a directory walk, not a tsc run.
// A fresh clone is built once by `npm ci` (the `prepare` script); this covers later edits.
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const STAMP = join('dist', '.build-stamp');
const INPUTS = ['src', 'test', 'bench', 'tsconfig.json', 'package.json'];

/** Newest modification time under `p` (a file or a directory tree), 0 if it is missing. */
function newestMtimeMs(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a deleted file shows as a newer directory
  for (const name of readdirSync(p)) newest = Math.max(newest, newestMtimeMs(join(p, name)));
  return newest;
}

if (!existsSync('src')) process.exit(0); // an installed package ships dist/ only
// The native addon (binding.gyp), rebuilt when its sources are newer than it.
const ADDON = join('build', 'Release', 'concord_sync_within.node');
if (Math.max(newestMtimeMs('binding.gyp'), newestMtimeMs(join('src', 'wal', 'native'))) > newestMtimeMs(ADDON)) {
  spawnSync(process.execPath, [join('scripts', 'build-native.js')], { stdio: 'inherit' });
}
const built = Math.max(newestMtimeMs(STAMP), newestMtimeMs(join('dist', '.tsbuildinfo')));
const sources = Math.max(...INPUTS.map(newestMtimeMs));
if (built > 0 && sources <= built) process.exit(0);
const r = spawnSync(process.execPath, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(STAMP, `${new Date().toISOString()}\n`);
