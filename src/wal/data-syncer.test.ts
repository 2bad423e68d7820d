import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { boundedDataSyncer, boundedSyncUnavailable, fdatasyncError } from './data-syncer.js';
import { tempDir } from './testutil.js';
import { inChildNode } from '../testkit/index.js';

test('the native bounded fdatasync is built (npm ci builds it) and loads', () => {
  assert.equal(boundedSyncUnavailable, undefined, `build/Release/concord_sync_within.node: ${boundedSyncUnavailable}`);
  assert.equal(typeof boundedDataSyncer().within, 'function');
});

test('within: a sync done inside the budget returns true and never calls late; one past it returns false and late reports it once', async () => {
  const { dir, cleanup } = tempDir();
  const syncer = boundedDataSyncer();
  const fd = openSync(join(dir, 'f'), 'w');
  try {
    const lates: Array<Error | null> = [];
    const late = (err: Error | null) => lates.push(err);
    for (let i = 0; i < 20; i++) {
      writeSync(fd, Buffer.alloc(100, i));
      // A generous budget: a 100-byte fdatasync here takes well under a second.
      assert.equal(syncer.within!(fd, 5000, late), true);
    }
    // A budget of 0: the deadline has passed before the thread can sync.
    writeSync(fd, Buffer.alloc(100, 1));
    assert.equal(syncer.within!(fd, 0, late), false);
    await until(() => lates.length > 0);
    assert.deepEqual(lates, [null], 'one late outcome, a success');
    // The thread is free again: the next sync runs.
    assert.equal(syncer.within!(fd, 5000, late), true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(lates.length, 1, 'a sync in time is not reported late');
  } finally {
    syncer.close!();
    syncer.close!();
    closeSync(fd);
    cleanup();
  }
});

test('within: a failed fdatasync is node:fs\'s error, thrown when in time and passed to late when not', async () => {
  const syncer = boundedDataSyncer();
  try {
    const badFd = 1 << 20;
    // In time: thrown, as fdatasyncSync would.
    assert.throws(() => syncer.within!(badFd, 5000, () => assert.fail('not late')), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, 'EBADF');
      assert.equal(e.syscall, 'fdatasync');
      assert.match(e.message, /^EBADF: bad file descriptor, fdatasync$/);
      return true;
    });
    // Late (budget 0): the error reaches the callback; or it beat the deadline and is thrown.
    let lateErr: Error | null | undefined;
    try {
      if (syncer.within!(badFd, 0, (e) => { lateErr = e; })) assert.fail('a bad fd cannot sync');
      await until(() => lateErr !== undefined);
    } catch (e) {
      lateErr = e as Error;
    }
    assert.equal((lateErr as NodeJS.ErrnoException).code, 'EBADF');
  } finally {
    syncer.close!();
  }
  assert.equal(fdatasyncError(5).code, 'EIO');
});

test('a process exits with a syncer open, closed, or collected unclosed, and with a late sync in flight', () => {
  const script = `
    import { openSync, writeSync } from 'node:fs';
    const { boundedDataSyncer } = await import(${JSON.stringify(new URL('./data-syncer.js', import.meta.url).href)});
    const fd = openSync(process.env.FILE, 'w');
    writeSync(fd, 'x');
    const open = boundedDataSyncer(); open.within(fd, 5000, () => {});
    const closed = boundedDataSyncer(); closed.within(fd, 5000, () => {}); closed.close();
    for (let i = 0; i < 50; i++) boundedDataSyncer().within(fd, 5000, () => {});
    globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); globalThis.gc();
    const late = boundedDataSyncer();
    let reported = false;
    if (!late.within(fd, 0, () => { reported = true; })) process.on('exit', () => { if (!reported) process.exitCode = 3; });
    console.log('done');
  `;
  const { dir, cleanup } = tempDir();
  try {
    // A child that hangs at exit (a thread joined wrongly) is killed after 30 s, and this fails.
    const out = inChildNode(['--expose-gc'], script, { ...process.env, FILE: join(dir, 'f') }, 30_000);
    assert.match(out, /done/);
  } finally {
    cleanup();
  }
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not met within 5 s');
}
