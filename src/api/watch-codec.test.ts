import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WatchResponse } from '../proto/index.js';
import { Event_EventType, type Event } from '../proto/index.js';
import { encodeEventsResponse } from './watch-codec.js';

test('encodeEventsResponse is byte-identical to the generated encoder (shared events, ids, zero fields, prev_kv)', () => {
  const kv = (k: string, v: string, rev: number) => ({ key: Buffer.from(k), value: Buffer.from(v), createRevision: 2, modRevision: rev, version: rev - 1, lease: rev % 2 === 0 ? 0n : 7n });
  const events: Event[] = [
    { type: Event_EventType.PUT, kv: kv('a', 'x'.repeat(300), 5), prevKv: undefined },
    { type: Event_EventType.DELETE, kv: { ...kv('b', '', 5), createRevision: 0, version: 0, value: Buffer.alloc(0) }, prevKv: kv('b', 'old', 4) },
  ];
  for (const header of [
    { clusterId: 0xfedcba9876543210n, memberId: 1n, revision: 5, raftTerm: 2 },
    { clusterId: 1n, memberId: 2n, revision: 0, raftTerm: 0 },
  ]) {
    for (const watchId of [0, 1, 300, 2 ** 40, -1]) {
      for (const evs of [events, events.slice(0, 1), []]) {
        const want = WatchResponse.encode({ header, watchId, created: false, canceled: false, compactRevision: 0, cancelReason: '', fragment: false, events: evs }).finish();
        assert.deepEqual(Buffer.from(encodeEventsResponse(header, watchId, evs)), Buffer.from(want), `watchId ${watchId}, ${evs.length} events, rev ${header.revision}`);
        assert.deepEqual(Buffer.from(encodeEventsResponse(header, watchId, evs)), Buffer.from(want), 'again, from the caches');
      }
    }
  }
});
