import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectWhenIdle, heapFootprintBytes } from './idle-gc.js';
import type { Logger } from '../log/index.js';

const MiB = 1024 * 1024;

/** A logger that keeps the fields of each "collected garbage while idle" line. */
function recordingLogger(): { log: Logger; collections: Array<Record<string, unknown>> } {
  const collections: Array<Record<string, unknown>> = [];
  const log = new Proxy({}, {
    get: (_t, name) => (msg: string, fields: Record<string, unknown> = {}) => {
      if (name === 'debug' && msg === 'collected garbage while idle') collections.push(fields);
    },
  }) as Logger;
  return { log, collections };
}

/** ~`mib` MiB of old-generation garbage: kept across scavenges, then dropped. */
async function makeGarbage(mib: number): Promise<void> {
  let keep: number[][] | undefined = [];
  for (let i = 0; i < mib * 1024; i++) keep.push(new Array(120).fill(i)); // ~1 KiB each
  await new Promise((r) => setTimeout(r, 50));
  keep.length = 0;
  keep = undefined;
}

const until = async (cond: () => boolean, boundMs: number): Promise<void> => {
  const deadline = Date.now() + boundMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
};

test('a busy loop is never collected; once idle after growth, one full GC gives the garbage back', async () => {
  const { log, collections } = recordingLogger();
  const stop = collectWhenIdle(log, { checkIntervalMs: 50, idleChecks: 2, idleUtilization: 0.2, growthBytes: 16 * MiB });
  try {
    // Busy: work in every turn of the loop while the heap grows, for a dozen checks or more.
    let busy = true;
    const spin = (): void => {
      const t = Date.now();
      while (Date.now() - t < 5) { /* keep the loop utilized */ }
      if (busy) setImmediate(spin);
    };
    spin();
    await makeGarbage(48);
    const endBusy = Date.now() + 1000;
    await until(() => Date.now() >= endBusy, 2000);
    assert.equal(collections.length, 0, 'no collection while the loop is busy');
    busy = false;
    await until(() => collections.length > 0, 60_000);
    assert.equal(collections.length, 1);
    const { 'before-bytes': before, 'after-bytes': after } = collections[0] as { 'before-bytes': number; 'after-bytes': number };
    assert.ok(before - after > 16 * MiB, `heap + external ${before} -> ${after} bytes`);
    // Idle and no new growth: no second collection.
    const quiet = Date.now() + 500;
    await until(() => Date.now() >= quiet, 1000);
    assert.equal(collections.length, 1);
  } finally {
    stop();
  }
});

test('growth counts from the footprint it is given: garbage made before the checks started (a restart\'s replay) is collected once idle', async () => {
  const { log, collections } = recordingLogger();
  const opts = { checkIntervalMs: 50, idleChecks: 2, idleUtilization: 0.2, growthBytes: 16 * MiB };
  const beforeStart = heapFootprintBytes();
  await makeGarbage(48); // the "start-up": done before the checks begin
  // Counted from now (the default, as before the fix), the same garbage never qualifies.
  const fromNow = recordingLogger();
  const stopFromNow = collectWhenIdle(fromNow.log, opts);
  const quiet = Date.now() + 500;
  await until(() => Date.now() >= quiet, 1000);
  stopFromNow();
  assert.equal(fromNow.collections.length, 0, 'counted from the end of the start, nothing grew');
  const stop = collectWhenIdle(log, opts, beforeStart);
  try {
    await until(() => collections.length > 0, 60_000);
    assert.equal(collections.length, 1);
    const { 'before-bytes': before, 'after-bytes': after } = collections[0] as { 'before-bytes': number; 'after-bytes': number };
    assert.ok(before - after > 16 * MiB, `heap + external ${before} -> ${after} bytes`);
  } finally {
    stop();
  }
});
