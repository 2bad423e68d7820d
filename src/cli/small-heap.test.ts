import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const smallHeap = fileURLToPath(new URL('./small-heap.js', import.meta.url));

/**
 * Runs a node child that (optionally) applies preferSmallHeap, then keeps 40 MB of young
 * objects alive across scavenges (what module compilation and the key-index rebuild do), and
 * reports the young generation's reserved size in MiB.
 */
function youngGenMiB(nodeArgs: string[], apply: boolean): number {
  const script = `
    const v8 = require('node:v8');
    (async () => {
      if (${apply}) (await import(${JSON.stringify(smallHeap)})).preferSmallHeap();
      const keep = [];
      for (let i = 0; i < 400000; i++) keep.push({ i, s: 'k' + i, a: [i, i] });
      const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      console.log(young.space_size / 1048576, keep.length);
    })();`;
  const out = execFileSync(process.execPath, [...nodeArgs, '-e', script], { encoding: 'utf8' });
  return Number(out.split(' ')[0]);
}

test('concord keeps the young generation at its initial size while many young objects survive', () => {
  assert.ok(youngGenMiB([], false) > 2, 'without it V8 grows the young generation (else this test shows nothing)');
  assert.ok(youngGenMiB([], true) <= 2);
});

test('a semi-space flag on node\'s command line wins over concord\'s setting', () => {
  assert.ok(youngGenMiB(['--semi-space-growth-factor=2'], true) > 2);
  assert.ok(youngGenMiB(['--max-semi-space-size=4'], true) > 2);
});
