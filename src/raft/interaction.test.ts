/**
 * Golden interaction tests (etcd-io/raft's testdata/*.txt style): every src/raft/testdata/*.txt
 * script runs against a fresh InteractionEnv and the transcript must equal the committed file.
 * RAFT_REWRITE=1 rewrites the files from the current behaviour; review every diff by eye.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript } from './rafttest/datadriven.js';
import { InteractionEnv } from './rafttest/interaction_env.js';

// Compiled to dist/src/raft/; the scripts stay in the source tree.
const here = dirname(fileURLToPath(import.meta.url));
const testdata = join(here, '..', '..', '..', 'src', 'raft', 'testdata');

for (const file of readdirSync(testdata).filter((f) => f.endsWith('.txt')).sort()) {
  test(`interaction: ${file}`, () => {
    const path = join(testdata, file);
    const want = readFileSync(path, 'utf8');
    const env = new InteractionEnv();
    const got = runScript(want, (c) => env.run(c));
    if (process.env.RAFT_REWRITE === '1') writeFileSync(path, got);
    else assert.equal(got, want);
  });
}
