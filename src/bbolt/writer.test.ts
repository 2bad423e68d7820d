// The writer's plan at a large store's scale (issue 10: no put pause over 100 ms while a
// snapshot is saved). A 1 GiB store of 4 KiB values has ~131k leaves: the plan must not keep
// objects per leaf (they cost ~400 heap bytes each and a full GC to trace) nor build its
// branch levels in one synchronous step after the scan (that step held the event loop for
// 1.2-1.5 s at 1 GiB). Both are checked by counts, not times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { planBoltFile, planBoltFileAsync, BoltReader, bufferSource, type BoltBucketSource } from './index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** `n` entries of 3000-byte values: two to a 2-page leaf (a third would need a third page). */
function bigValues(n: number, onEnd?: () => void): BoltBucketSource {
  const value = Buffer.alloc(3000, 7);
  const key = Buffer.alloc(15);
  return {
    name: Buffer.from('key'),
    *entries() {
      for (let i = 0; i < n; i++) {
        key.write(`bench/${String(i).padStart(9, '0')}`, 'latin1'); // one buffer rewritten: a transient view
        yield [key, value];
      }
      onEnd?.();
    },
  };
}

const leavesOf = (entries: number): number => entries / 2;

test('a plan of many leaves keeps columns, not objects per leaf (heap and buffers per leaf stay small)', () => {
  const entries = 100_000;
  gc();
  const before = process.memoryUsage();
  const plan = planBoltFile([bigValues(entries)]);
  gc();
  const after = process.memoryUsage();
  const perLeaf = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / leavesOf(entries);
  // Columns cost ~56 bytes a leaf (three numbers, a key and its end), up to twice that while
  // they grow; objects and a Buffer per leaf cost ~400.
  assert.ok(perLeaf < 150, `the plan holds ${perLeaf.toFixed(0)} bytes per leaf`);
  assert.ok(plan.size > 0);
});

test('planBoltFileAsync lets the loop run while it plans the branch levels after the scan', async () => {
  const entries = 100_000;
  let scanned = false;
  let turnsAfterScan = 0;
  let planning = true;
  const tick = (): void => {
    if (!planning) return;
    if (scanned) turnsAfterScan++;
    setImmediate(tick);
  };
  setImmediate(tick);
  await planBoltFileAsync([bigValues(entries, () => { scanned = true; })]);
  planning = false;
  assert.ok(scanned);
  // 50k leaves, a yield every 4096 children of a branch level.
  assert.ok(turnsAfterScan >= 10, `the loop ran ${turnsAfterScan} times between the end of the scan and the plan`);
});

test('a large plan writes a file the reader walks whole (keys, values and branch levels as planned)', () => {
  const entries = 20_000;
  const plan = planBoltFile([bigValues(entries)]);
  const parts: Buffer[] = [];
  for (const p of plan.pages()) parts.push(Buffer.from(p));
  const r = BoltReader.open(bufferSource(Buffer.concat(parts)));
  assert.deepEqual(r.check(), []);
  let n = 0;
  for (const e of r.bucket(Buffer.from('key'))!) {
    assert.equal(e.key.toString('latin1'), `bench/${String(n).padStart(9, '0')}`);
    assert.equal(e.value.length, 3000);
    n++;
  }
  assert.equal(n, entries);
});
