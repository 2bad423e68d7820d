// Builds the native addon (binding.gyp: the WAL's bounded fdatasync, src/wal/native/) with
// node-gyp: `npm ci`'s install step, in the repo and wherever the package is installed.
// A machine without a C compiler still installs: the WAL then syncs on the event loop with
// no bound (the server logs it at start), so this warns rather than fails.
// `npm start` rebuilds it through build-if-stale.js when its sources changed.
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const ADDON = join('build', 'Release', 'concord_sync_within.node');
// npm puts node-gyp on the PATH of its scripts and names it in npm_config_node_gyp.
const gyp = process.env.npm_config_node_gyp;
const r = gyp ? spawnSync(process.execPath, [gyp, 'rebuild'], { stdio: 'inherit' }) : spawnSync('node-gyp', ['rebuild'], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(
    `\nconcord: the native addon (${ADDON}) did not build (${r.error?.message ?? `node-gyp exited with ${r.status}`}).\n` +
      'The server still runs; its WAL fdatasyncs may then hold the event loop as long as the disk takes.\n',
  );
}
