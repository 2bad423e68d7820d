import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WatchResponse } from '../proto/index.js';
import { Event_EventType, type Event } from '../proto/index.js';
import { ResponseBatch, eventsResponse } from './watch-codec.js';

const kv = (k: string, v: string, rev: number) => ({ key: Buffer.from(k), value: Buffer.from(v), createRevision: 2, modRevision: rev, version: rev - 1, lease: rev % 2 === 0 ? 0n : 7n });
const events: Event[] = [
  { type: Event_EventType.PUT, kv: kv('a', 'x'.repeat(300), 5), prevKv: undefined },
  { type: Event_EventType.DELETE, kv: { ...kv('b', '', 5), createRevision: 0, version: 0, value: Buffer.alloc(0) }, prevKv: kv('b', 'old', 4) },
];

/** The generated encoder's bytes, framed as gRPC messages (what the batch must equal). */
function framed(messages: WatchResponse[]): Buffer {
  return Buffer.concat(messages.map((m) => {
    const body = WatchResponse.encode(m).finish();
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(body.length, 1);
    return Buffer.concat([prefix, body]);
  }));
}

test('ResponseBatch frames events responses byte-identical to the generated encoder (shared arrays, ids, zero fields, prev_kv)', () => {
  const batch = new ResponseBatch();
  for (const header of [
    { clusterId: 0xfedcba9876543210n, memberId: 1n, revision: 5, raftTerm: 2 },
    { clusterId: 1n, memberId: 2n, revision: 0, raftTerm: 0 },
  ]) {
    for (const watchId of [0, 1, 300, 2 ** 40, -1]) {
      for (const evs of [events, events.slice(0, 1), []]) {
        const want = framed([eventsResponse(header, watchId, evs)]);
        batch.addEvents(header, watchId, evs);
        assert.equal(batch.bytes, want.length);
        assert.deepEqual(batch.take(), want, `watchId ${watchId}, ${evs.length} events, rev ${header.revision}`);
        batch.addEvents(header, watchId, evs);
        assert.deepEqual(batch.take(), want, 'again, from the caches');
      }
    }
  }
});

test('ResponseBatch: a fan-out batch mixes shared-event responses with whole messages and revisions, in order', () => {
  const batch = new ResponseBatch();
  const want: WatchResponse[] = [];
  const header = (revision: number) => ({ clusterId: 9n, memberId: 8n, revision, raftTerm: 3 });
  const later: Event[] = [{ type: Event_EventType.PUT, kv: kv('a', 'y', 6), prevKv: undefined }];
  for (let id = 0; id < 200; id++) {
    const [rev, evs] = id % 3 === 0 ? [6, later] : [5, events];
    batch.addEvents(header(rev), id, evs);
    want.push(eventsResponse(header(rev), id, evs));
    if (id % 50 === 7) {
      const control: WatchResponse = { ...eventsResponse(header(rev), id, []), created: true };
      batch.addMessage(WatchResponse.encode(control).finish());
      want.push(control);
    }
  }
  // A filtered watcher's array is a new array holding the same Event objects.
  batch.addEvents(header(5), 7, events.filter((e) => e.type === Event_EventType.DELETE));
  want.push(eventsResponse(header(5), 7, events.slice(1)));
  assert.equal(batch.count, want.length);
  const out = batch.take();
  assert.deepEqual(out, framed(want));
  // Each frame decodes to what was added (the decoder sees the same thing a client does).
  let at = 0;
  for (const w of want) {
    const len = out.readUInt32BE(at + 1);
    const got = WatchResponse.decode(out.subarray(at + 5, at + 5 + len));
    assert.equal(got.watchId, w.watchId);
    assert.equal(got.events.length, w.events.length);
    at += 5 + len;
  }
  assert.equal(at, out.length);
  assert.equal(batch.count, 0);
  assert.equal(batch.bytes, 0);
});

test('ResponseBatch.addFanout: each watcher\'s spliced response equals the generated encoder\'s, byte for byte, in id order', () => {
  const batch = new ResponseBatch();
  const header = { clusterId: 0xfedcba9876543210n, memberId: 3n, revision: 5, raftTerm: 2 };
  // Ids of every varint length the splice writes: absent (0), one byte, the 127/128 edge, two bytes, past 32 bits.
  const ids = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53 - 1];
  for (const evs of [events, events.slice(1), []]) {
    const want = framed(ids.map((id) => eventsResponse(header, id, evs)));
    batch.addFanout(header, ids, evs);
    assert.equal(batch.count, ids.length);
    assert.equal(batch.bytes, want.length);
    assert.deepEqual(batch.take(), want, `${evs.length} events`);
  }
  // Beside single responses and whole messages, in order; a negative id (client-chosen) falls back to the generated encoder.
  const control: WatchResponse = { ...eventsResponse(header, 4, []), created: true };
  batch.addEvents(header, 9, events);
  for (let from = 0; from < 3;) from = batch.addFanout({ ...header, revision: 6 }, [2, -1, 3], events, from);
  batch.addMessage(WatchResponse.encode(control).finish());
  batch.addFanout(header, [7], events);
  const want = [eventsResponse(header, 9, events), ...[2, -1, 3].map((id) => eventsResponse({ ...header, revision: 6 }, id, events)), control, eventsResponse(header, 7, events)];
  assert.equal(batch.count, want.length);
  assert.deepEqual(batch.take(), framed(want));
});

test('ResponseBatch.addFanout: long runs of ids of one varint length (frames copied, ids patched) equal the generated encoder\'s', () => {
  const batch = new ResponseBatch();
  const header = { clusterId: 0xfedcba9876543210n, memberId: 3n, revision: 5, raftTerm: 2 };
  const run = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  // 0 (no field) twice, 1..127 (one byte), 128..1128 (two), then lengths changing at every id, then a run again.
  const ids = [0, 0, ...run(1, 1128), 2 ** 40, 5, 2 ** 40 + 1, 0, 6, ...run(20000, 77)];
  for (const evs of [events, []]) {
    const want = framed(ids.map((id) => eventsResponse(header, id, evs)));
    batch.addFanout(header, ids, evs);
    assert.equal(batch.bytes, want.length);
    assert.ok(batch.take().equals(want), `${evs.length} events`);
  }
});

test('ResponseBatch.addFanout split between batches at a byte budget: the batches together are the whole fan-out', () => {
  const batch = new ResponseBatch();
  const header = { clusterId: 5n, memberId: 6n, revision: 9, raftTerm: 1 };
  const ids = Array.from({ length: 300 }, (_, i) => i * 7);
  const whole = framed(ids.map((id) => eventsResponse(header, id, events)));
  for (const budget of [1, 500, 4096, 65536]) {
    const parts: Buffer[] = [];
    let batches = 0;
    for (let from = 0; from < ids.length; batches++) {
      const next = batch.addFanout(header, ids, events, from, budget);
      assert.ok(next > from, 'every call adds at least one response');
      assert.ok(next - from === 1 || batch.bytes - (whole.length / ids.length) * 2 < budget, `stops once the batch holds ${budget} bytes`);
      from = next;
      parts.push(batch.take());
    }
    assert.deepEqual(Buffer.concat(parts), whole, `budget ${budget}`);
    if (budget === 1) assert.equal(batches, ids.length);
  }
});

test('ResponseBatch: a multi-revision response (revisions merged for a watcher that fell behind) equals the generated encoder\'s, byte for byte', () => {
  const batch = new ResponseBatch();
  const at6: Event[] = [{ type: Event_EventType.PUT, kv: kv('a', 'y'.repeat(200), 6), prevKv: undefined }];
  const at7: Event[] = [
    { type: Event_EventType.PUT, kv: kv('c', 'z', 7), prevKv: undefined },
    { type: Event_EventType.DELETE, kv: { ...kv('a', '', 7), createRevision: 0, version: 0, value: Buffer.alloc(0) }, prevKv: undefined },
  ];
  const ids = [0, 1, 128, 2 ** 33];
  // Each revision sent alone first, as a stream that kept up would: its encodings are cached then.
  for (const [rev, evs] of [[5, events], [6, at6], [7, at7]] as const) batch.addFanout({ clusterId: 4n, memberId: 5n, revision: rev, raftTerm: 6 }, ids, evs);
  batch.take();
  const merged = [...events, ...at6, ...at7];
  const header = { clusterId: 4n, memberId: 5n, revision: 7, raftTerm: 6 };
  const want = framed(ids.map((id) => eventsResponse(header, id, merged)));
  batch.addFanout(header, ids, merged);
  assert.equal(batch.bytes, want.length);
  assert.deepEqual(batch.take(), want);
  for (let from = 0; from < ids.length;) from = batch.addFanout(header, ids, merged, from, 1); // split between batches
  assert.deepEqual(batch.take(), want);
  batch.addEvents(header, -3, merged); // a negative id: the generated encoder
  assert.deepEqual(batch.take(), framed([eventsResponse(header, -3, merged)]));
  const decoded = WatchResponse.decode(want.subarray(5, 5 + want.readUInt32BE(1)));
  assert.deepEqual(decoded.events.map((e) => e.kv!.modRevision), [5, 5, 6, 7, 7]);
});
