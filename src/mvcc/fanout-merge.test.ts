import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Event_EventType, type Event } from '../proto/index.js';
import { Backend } from '../storage/index.js';
import { mergeFanouts, revisionsIn } from './fanout-merge.js';
import type { Fanout } from './fanout-merge.js';
import { WatchableStore } from './watchable-store.js';
import { b, putReq, tempDir } from './testutil.js';

const ev = (key: string, rev: number): Event => ({
  type: Event_EventType.PUT, kv: { key: b(key), value: b(`v${rev}`), createRevision: 2, modRevision: rev, version: rev - 1, lease: 0n }, prevKv: undefined,
});
const fanout = (revision: number, watchIds: number[], events = [ev('a', revision)]): Fanout => ({ kind: 'fanout', events, revision, watchIds, bytesEach: 100 });
const revs = (f: Fanout) => f.events.map((e) => e.kv!.modRevision);

test('mergeFanouts: the same watchers in every fan-out get one response each, all revisions in order, header at the last', () => {
  const run = [fanout(5, [1, 2, 3]), fanout(6, [1, 2, 3], [ev('a', 6), ev('b', 6)]), fanout(7, [1, 2, 3])];
  const out = mergeFanouts(run);
  assert.equal(out.length, 1);
  assert.deepEqual([out[0].watchIds, out[0].revision, revs(out[0]), out[0].bytesEach], [[1, 2, 3], 7, [5, 6, 6, 7], 300]);
  assert.deepEqual(mergeFanouts([run[0]]), [run[0]], 'one fan-out stays as it is');
  const distinct = [fanout(5, [1]), fanout(6, [2, 3]), fanout(7, [4])];
  assert.deepEqual(mergeFanouts(distinct), distinct, 'no watcher in two fan-outs: the run as it is');
});

test('mergeFanouts: watchers with different fan-outs are grouped by them, each watcher once, its events in order', () => {
  const run = [fanout(5, [1, 2]), fanout(6, [2, 3]), fanout(7, [1, 2]), fanout(8, [4])];
  const out = mergeFanouts(run);
  assert.deepEqual(out.map((f) => [f.watchIds, f.revision, revs(f)]), [
    [[1], 7, [5, 7]],
    [[2], 7, [5, 6, 7]],
    [[3], 6, [6]],
    [[4], 8, [8]],
  ]);
  // A watcher alone in one fan-out keeps that fan-out's events array (its encoding is cached).
  assert.equal(out[2].events, run[1].events);
  // Watchers that got the same fan-outs share one array.
  const shared = mergeFanouts([fanout(5, [1, 2, 9]), fanout(6, [2, 1]), fanout(7, [9])]);
  assert.deepEqual(shared.map((f) => [f.watchIds, revs(f)]), [[[1, 2], [5, 6]], [[9], [5, 7]]]);
  for (const f of [...out, ...shared]) assert.ok(revs(f).every((r, i, a) => i === 0 || a[i - 1] <= r));
});

test('revisionsIn counts distinct revisions', () => {
  assert.equal(revisionsIn([]), 0);
  assert.equal(revisionsIn([ev('a', 3), ev('b', 3), ev('a', 4)]), 2);
});

test('WatchStream.nextFanoutRun takes consecutive fan-outs within the revision and byte bounds, and stops at anything else', async () => {
  const dir = tempDir('concord-fanout-run-');
  const ws = WatchableStore.open({ backend: Backend.open({ path: path.join(dir, 'db.lmdb') }) });
  try {
    const s = ws.newWatchStream<string>();
    for (let i = 0; i < 3; i++) s.watch({ id: 0, key: b('a'), end: undefined, startRevision: 0, filterPut: false, filterDelete: false });
    for (let i = 0; i < 5; i++) ws.kv.put(putReq('a', `${i}`)); // revisions 2..6
    s.pushControl('between');
    ws.kv.put(putReq('a', 'x')); // revision 7
    const bytesEach = s.nextFanoutRun({ maxRevisions: 1, maxBytes: 1 })[0].bytesEach;
    assert.deepEqual(s.nextFanoutRun({ maxRevisions: 2, maxBytes: 1 << 20 }).map((f) => f.revision), [3, 4], 'two revisions');
    assert.deepEqual(s.nextFanoutRun({ maxRevisions: 100, maxBytes: bytesEach }).map((f) => f.revision), [5], 'one response\'s worth of bytes (the first always goes)');
    const merged = s.nextMergedFanouts();
    assert.deepEqual(merged.map((f) => [f.watchIds, f.revision, revs(f)]), [[[0, 1, 2], 6, [6]]], 'stops at the control item');
    assert.deepEqual(s.nextMergedFanouts(), [], 'the head is not a fan-out');
    assert.deepEqual(s.nextItem(), { kind: 'control', control: 'between' });
    assert.deepEqual(s.nextMergedFanouts().map((f) => f.revision), [7]);
    ws.kv.put(putReq('a', 'y'));
    ws.kv.put(putReq('a', 'z'));
    assert.deepEqual(s.nextMergedFanouts().map((f) => [f.watchIds, f.revision, revs(f)]), [[[0, 1, 2], 9, [8, 9]]]);
    assert.equal(s.hasRoom(), true);
  } finally {
    await ws.kv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
