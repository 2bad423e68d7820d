// A stream that reads slowly gets several revisions per response (etcd's batching of watchers
// that fell behind; Concord merges the revisions queued for a watcher into one response, see
// mvcc/fanout-merge.ts), and still sees every event once, in order, with each revision whole
// in one response, the header revision at or past its events, prev_kv right and filters obeyed.
//
// REVISIONS x WATCHERS stays under the old 8,192-response queue bound, so before merging the
// queue held every revision and sent them one by one: "some response carries several
// revisions" failed then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, b, prefixEnd, mk } from './harness.js';
import { WatchStreamClient } from './watch-client.js';
import { WatchCreateRequest_FilterType, type WatchResponse } from '../src/proto/gen/etcdserverpb/rpc.js';
import { Event_EventType } from '../src/proto/gen/mvccpb/kv.js';

const REVISIONS = 100;
const WATCHERS = 50;
const KEYS_PER_TXN = 3;
const VALUE_BYTES = 200;

/** Each of watcher `id`'s responses as the revisions it carries, checked whole on the way. */
function revisionsPerResponse(rs: WatchResponse[], id: number): number[][] {
  return rs.filter((r) => r.watchId === id && r.events.length > 0).map((r) => {
    const revs = r.events.map((e) => e.kv!.modRevision);
    assert.ok(r.header!.revision >= revs[revs.length - 1]!, `watcher ${id}: header revision ${r.header!.revision} below its events`);
    return [...new Set(revs)];
  });
}

for (const target of selectedTargets()) {
  test(`${target}: a slow reader gets multi-revision responses with every event once, in order, each revision whole`, async () => {
    const server = await startServer({ target });
    const reader = server.client();
    const writer = server.client();
    const w = new WatchStreamClient(reader);
    try {
      const range = { key: b('mb/'), rangeEnd: prefixEnd('mb/') };
      for (let i = 0; i < WATCHERS; i++) w.create(range);
      w.create({ ...range, prevKv: true }); // id WATCHERS: the prev_kv path
      w.create({ ...range, filters: [WatchCreateRequest_FilterType.NODELETE] }); // id WATCHERS + 1: a filtered copy
      await w.count(WATCHERS + 2, 'watchers created');
      w.pause();
      const first = (await writer.status()).header!.revision + 1;
      const value = (r: number, k: number) => Buffer.from(`${r}:${k}:`.padEnd(VALUE_BYTES, 'v'));
      for (let r = 0; r < REVISIONS; r++) {
        // One revision, several keys: its events must never be split between responses.
        await writer.txn(mk.txn({ success: Array.from({ length: KEYS_PER_TXN }, (_, k) => mk.opPut({ key: b(`mb/${k}`), value: value(r, k) })) }));
      }
      const last = first + REVISIONS - 1;
      w.resume();
      for (let id = 0; id < WATCHERS + 2; id++) await w.eventAt(id, last);

      const want = Array.from({ length: REVISIONS }, (_, i) => first + i);
      let multi = 0;
      for (let id = 0; id < WATCHERS + 2; id++) {
        const perResponse = revisionsPerResponse(w.responses, id);
        assert.deepEqual(perResponse.flat(), want, `watcher ${id}: every revision once, in order, none split`);
        multi += perResponse.filter((revs) => revs.length > 1).length;
        const events = w.responses.filter((r) => r.watchId === id).flatMap((r) => r.events);
        assert.equal(events.length, REVISIONS * KEYS_PER_TXN, `watcher ${id}: each revision's ${KEYS_PER_TXN} events`);
        events.forEach((e, i) => {
          const r = Math.floor(i / KEYS_PER_TXN), k = i % KEYS_PER_TXN;
          assert.equal(e.type, Event_EventType.PUT);
          assert.equal(e.kv!.key.toString(), `mb/${k}`);
          assert.deepEqual(e.kv!.value, value(r, k));
          if (id === WATCHERS) assert.deepEqual(e.prevKv?.value, r === 0 ? undefined : value(r - 1, k), `prev_kv of event ${i}`);
          else assert.equal(e.prevKv, undefined);
        });
      }
      assert.ok(multi > 0, 'some response carries several revisions');
      console.log(`# ${target}: ${multi} multi-revision responses to ${WATCHERS + 2} watchers over ${REVISIONS} revisions`);
    } finally {
      w.close();
      reader.close();
      writer.close();
      await server.destroy();
    }
  });
}
