// Watch, differentially: the same operations against real etcd 3.4 and Concord (each on a
// fresh member, so revisions line up), the responses each watcher receives compared field by
// field (types, keys, values, revisions, prev_kv, created/canceled, compact_revision, cancel
// reasons, fragments, header revisions). Responses are compared per watcher, in order: etcd
// interleaves different watchers of one stream in map order, which is not part of its contract.
//
// Run one side only with CONCORD_TESTS_ETCD_ONLY=1 / CONCORD_TESTS_CONCORD_ONLY=1 (harness.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WatchCreateRequest_FilterType, type WatchResponse } from '../src/proto/gen/etcdserverpb/rpc.js';
import { startServer, selectedTargets, runConcord, b, mk, prefixEnd, normalize, sleep, type EtcdClient, type TargetName } from './harness.js';
import { WatchStreamClient } from './watch-client.js';
import { rng } from '../src/testkit/index.js'; // the project's seeded PRNG (mulberry32)

const ALL = Buffer.from([0]);

/** Runs `scenario` on a fresh member of each target; the results must be equal. */
async function differential(scenario: (c: EtcdClient) => Promise<unknown>, extraArgs: string[] = []): Promise<void> {
  const results = new Map<TargetName, unknown>();
  for (const target of selectedTargets()) {
    const server = await startServer({ target, extraArgs });
    const c = server.client();
    try {
      results.set(target, await scenario(c));
    } finally {
      c.close();
      await server.destroy();
    }
  }
  if (results.has('etcd') && results.has('concord')) assert.deepEqual(results.get('concord'), results.get('etcd'));
}

/** Each watcher's responses in arrival order (responses with watch_id -1 under "-1"). */
function byWatcher(rs: WatchResponse[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const r of rs) (out[String(r.watchId)] ??= []).push(normalize(r));
  return out;
}

test('live events: single key, prefix with prev_kv, from-key, NOPUT, NODELETE, client-chosen id, cancel, progress', async () => {
  await differential(async (c) => {
    const w = new WatchStreamClient(c);
    try {
      w.create({ key: b('a') });
      w.create({ key: b('p'), rangeEnd: prefixEnd('p'), prevKv: true });
      w.create({ key: b('m'), rangeEnd: ALL });
      w.create({ key: b('p'), rangeEnd: prefixEnd('p'), filters: [WatchCreateRequest_FilterType.NOPUT] });
      w.create({ key: b('p'), rangeEnd: prefixEnd('p'), filters: [WatchCreateRequest_FilterType.NODELETE] });
      w.create({ key: b('a'), watchId: 10 });
      await w.count(6, 'six created');
      await c.put({ key: b('a'), value: b('1') }); // 2
      await c.put({ key: b('p1'), value: b('x') }); // 3
      await c.put({ key: b('p2'), value: b('y') }); // 4
      await c.put({ key: b('p1'), value: b('x2') }); // 5
      await c.txn(mk.txn({ success: [mk.opPut({ key: b('a'), value: b('2') }), mk.opDel({ key: b('p1') }), mk.opPut({ key: b('q'), value: b('1') })] })); // 6
      await c.deleteRange({ key: b('p'), rangeEnd: b('q') }); // 7
      await c.put({ key: b('z'), value: b('zz') }); // 8
      await c.deleteRange({ key: b('a') }); // 9
      for (const [id, rev] of [[0, 9], [1, 7], [2, 8], [3, 7], [4, 5], [10, 9]]) await w.eventAt(id, rev);
      w.cancel(0);
      w.cancel(999); // unknown: etcd answers nothing
      await w.until((rs) => rs.some((r) => r.watchId === 0 && r.canceled), 'cancel answered');
      w.progress();
      await w.until((rs) => rs.some((r) => r.watchId === -1), 'progress answered');
      await c.put({ key: b('a'), value: b('after cancel') }); // 10: only watcher 10 sees it
      await w.eventAt(10, 10);
      return byWatcher(w.responses);
    } finally {
      w.close();
    }
  });
});

test('history: past start revisions, compaction (compact_revision then cancel), future start, duplicate id, empty range', async () => {
  await differential(async (c) => {
    await c.put({ key: b('a'), value: b('1') }); // 2
    await c.put({ key: b('b'), value: b('1') }); // 3
    await c.put({ key: b('a'), value: b('2') }); // 4
    await c.deleteRange({ key: b('a') }); // 5
    await c.put({ key: b('a'), value: b('3') }); // 6
    await c.put({ key: b('c'), value: b('1') }); // 7
    await c.put({ key: b('a'), value: b('4') }); // 8
    await c.compact({ revision: 5, physical: true });
    const w = new WatchStreamClient(c);
    try {
      w.create({ key: b('a'), startRevision: 3, watchId: 1 }); // below the compaction
      w.create({ key: b('a'), startRevision: 6, watchId: 2, prevKv: true });
      w.create({ key: ALL, rangeEnd: ALL, startRevision: 6, watchId: 3 });
      w.create({ key: b('b'), watchId: 7 });
      w.create({ key: b('b'), watchId: 7 }); // duplicate
      w.create({ key: b('b'), rangeEnd: b('a'), watchId: 8 }); // empty range
      w.create({ key: b('a'), startRevision: 10, watchId: 9 }); // future
      await w.until((rs) => rs.some((r) => r.compactRevision !== 0), 'compacted');
      await w.eventAt(2, 8);
      await w.eventAt(3, 8);
      await c.put({ key: b('a'), value: b('5') }); // 9: before watcher 9's start
      await c.put({ key: b('a'), value: b('6') }); // 10
      for (const id of [9, 2, 3]) await w.eventAt(id, 10);
      return byWatcher(w.responses);
    } finally {
      w.close();
    }
  });
});

test('fragment: a revision larger than max-request-bytes is split into fragments that reassemble exactly', async () => {
  await differential(async (c) => {
    // etcd splits at max-request-bytes + 512 KiB: 200 deletes carrying 3,800-byte prev_kvs pass that.
    for (let i = 0; i < 200; i++) await c.put({ key: b(`f/${String(i).padStart(3, '0')}`), value: Buffer.alloc(3800, 97 + (i % 26)) });
    const w = new WatchStreamClient(c);
    try {
      w.create({ key: b('f/'), rangeEnd: prefixEnd('f/'), prevKv: true, fragment: true, watchId: 1 });
      w.create({ key: b('f/'), rangeEnd: prefixEnd('f/'), prevKv: true, watchId: 2 });
      await w.count(2, 'created');
      await c.deleteRange({ key: b('f/'), rangeEnd: prefixEnd('f/') }); // 202
      await w.until((rs) => rs.some((r) => r.watchId === 1 && r.events.length > 0 && !r.fragment), 'last fragment');
      await w.eventAt(2, 202);
      const parts = w.responses.filter((r) => r.watchId === 1 && r.events.length > 0);
      assert.ok(parts.length > 1, 'split into fragments');
      const whole = w.responses.find((r) => r.watchId === 2 && r.events.length > 0)!;
      assert.deepEqual(normalize(parts.flatMap((p) => p.events)), normalize(whole.events), 'fragments reassemble exactly');
      return byWatcher(w.responses);
    } finally {
      w.close();
    }
  }, ['--max-request-bytes', '4096']);
});

test('progress_notify: a quiet watcher hears the current revision every --experimental-watch-progress-notify-interval', async () => {
  await differential(async (c) => {
    await c.put({ key: b('x'), value: b('1') }); // 2
    const w = new WatchStreamClient(c);
    try {
      w.create({ key: b('a'), progressNotify: true, watchId: 4 });
      w.create({ key: b('a'), watchId: 5 });
      await w.until((rs) => rs.some((r) => r.watchId === 4 && !r.created && r.events.length === 0), 'a progress notification');
      const note = w.responses.find((r) => r.watchId === 4 && !r.created)!;
      return normalize({ note, others: w.responses.filter((r) => r.watchId === 5) });
    } finally {
      w.close();
    }
  }, ['--experimental-watch-progress-notify-interval', '300ms']);
});

test('Concord: a watcher at the compaction revision still sees a delete at that revision (etcd #18089, fixed after 3.4)', { skip: !runConcord() }, async () => {
  const server = await startServer({ target: 'concord' });
  const c = server.client();
  const w = new WatchStreamClient(c);
  try {
    await c.put({ key: b('a'), value: b('1') }); // 2
    await c.deleteRange({ key: b('a') }); // 3
    await c.put({ key: b('b'), value: b('1') }); // 4
    await c.compact({ revision: 3, physical: true });
    w.create({ key: b('a'), startRevision: 3, watchId: 1 });
    w.create({ key: b('b'), startRevision: 3, watchId: 2 });
    await w.eventAt(2, 4);
    await w.eventAt(1, 3);
    const ev = w.responses.find((r) => r.watchId === 1 && r.events.length > 0)!.events;
    assert.deepEqual(normalize(ev), [{ type: 1, kv: { key: 'a', createRevision: 0, modRevision: 3, version: 0, value: '', lease: '0' }, prevKv: undefined }]);
  } finally {
    w.close();
    c.close();
    await server.destroy();
  }
});

test('Concord: many streams on one connection, many watchers per stream, each with its own events', { skip: !runConcord() }, async () => {
  const server = await startServer({ target: 'concord' });
  const c = server.client();
  const streams = Array.from({ length: 8 }, () => new WatchStreamClient(c));
  try {
    streams.forEach((w, si) => { for (let k = 0; k < 10; k++) w.create({ key: b(`s${si}/k${k}`) }); });
    for (const w of streams) await w.count(10, 'created');
    for (let si = 0; si < streams.length; si++) for (let k = 0; k < 10; k++) await c.put({ key: b(`s${si}/k${k}`), value: b(`${si}.${k}`) });
    for (const [si, w] of streams.entries()) {
      await w.until((rs) => rs.filter((r) => r.events.length > 0).length === 10, `stream ${si} events`);
      const got = w.responses.filter((r) => r.events.length > 0).map((r) => [r.watchId, r.events.map((e) => e.kv!.value.toString())]);
      assert.deepEqual(got, Array.from({ length: 10 }, (_, k) => [k, [`${si}.${k}`]]));
    }
  } finally {
    for (const w of streams) w.close();
    c.close();
    await server.destroy();
  }
});

test('fan-out: many watchers of one key and prefix on two streams (prev_kv, filters, fragment, history catch-up together) get what etcd sends', async () => {
  await differential(async (c) => {
    const streams = [new WatchStreamClient(c), new WatchStreamClient(c)];
    try {
      // Watchers differ in options only every few ids, so most of them share their events'
      // bytes (the encoding path under test) while the odd ones take the other shapes.
      const options = (i: number) => ({
        prevKv: i % 3 === 0,
        fragment: i % 7 === 0,
        filters: i % 5 === 1 ? [WatchCreateRequest_FilterType.NOPUT] : i % 5 === 2 ? [WatchCreateRequest_FilterType.NODELETE] : [],
      });
      const live = 40;
      for (const [si, w] of streams.entries()) {
        for (let i = 0; i < live; i++) w.create({ ...(i % 2 === 0 ? { key: b('f/a') } : { key: b('f/'), rangeEnd: prefixEnd('f/') }), ...options(i + si) });
        await w.count(live, 'live watchers created');
      }
      await c.put({ key: b('f/a'), value: b('1') }); // 2
      await c.put({ key: b('f/b'), value: b('x') }); // 3
      await c.txn(mk.txn({ success: [mk.opPut({ key: b('f/a'), value: b('2') }), mk.opPut({ key: b('f/c'), value: b('y') }), mk.opDel({ key: b('f/b') })] })); // 4
      await c.put({ key: b('f/a'), value: b('3') }); // 5
      await c.deleteRange({ key: b('f/'), rangeEnd: prefixEnd('f/') }); // 6
      // Late watchers from revision 2: they catch up from history together, then go live.
      const late = 20;
      for (const [si, w] of streams.entries()) {
        for (let i = 0; i < late; i++) w.create({ ...(i % 2 === 0 ? { key: b('f/a') } : { key: b('f/'), rangeEnd: prefixEnd('f/') }), startRevision: 2, ...options(i + si) });
      }
      for (const w of streams) {
        await w.until((rs) => rs.filter((r) => r.created).length === live + late, 'late watchers created');
        for (let id = live; id < live + late; id++) await w.until((rs) => rs.some((r) => r.watchId === id && r.events.length > 0), `late watcher ${id} caught up`);
      }
      await c.put({ key: b('f/a'), value: b('4') }); // 7
      await c.put({ key: b('f/z'), value: b('end') }); // 8: prefix watchers only
      // Each watcher's last event: NOPUT watchers end on the delete at 6; f/a watchers on 7; prefix watchers on 8.
      for (const [si, w] of streams.entries()) {
        for (let id = 0; id < live + late; id++) {
          const i = id < live ? id : id - live;
          const noPut = options(i + si).filters.includes(WatchCreateRequest_FilterType.NOPUT);
          await w.eventAt(id, noPut ? 6 : i % 2 === 0 ? 7 : 8);
        }
      }
      return streams.map((w) => byWatcher(w.responses));
    } finally {
      for (const w of streams) w.close();
    }
  });
});

// ---------------------------------------------------------------- seeded random sequence

interface RandWatcher { id: number; key: Buffer; end: Buffer | undefined; start: number; noPut: boolean; noDelete: boolean; canceled: boolean; compacted: boolean }

function inRange(w: RandWatcher, k: string): boolean {
  const key = Buffer.from(k);
  if (w.end === undefined) return key.equals(w.key);
  return Buffer.compare(key, w.key) >= 0 && (w.end.length === 1 && w.end[0] === 0 ? true : Buffer.compare(key, w.end) < 0);
}

test('a seeded random sequence: writes, compactions, watchers joining at past/current/future revisions, cancels: same events', async () => {
  const seed = Number(process.env.CONCORD_WATCH_DIFF_SEED ?? (Date.now() % 1_000_000));
  const steps = Number(process.env.CONCORD_WATCH_DIFF_OPS ?? 150);
  console.log(`# watch random sequence: seed ${seed} (CONCORD_WATCH_DIFF_SEED=${seed} to replay), ${steps} steps`);
  await differential(async (c) => {
    const rnd = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const keys = ['w/a', 'w/b', 'w/c', 'w/ca', 'w/cb', 'w/d', 'w/e'];
    const live = new Set<string>();
    const history: Array<{ rev: number; key: string; put: boolean }> = [];
    let rev = 1;
    let compactRev = 0;
    let nextId = 1;
    const watchers: RandWatcher[] = [];
    const s = new WatchStreamClient(c);
    const lastExpected = (w: RandWatcher): number => {
      let last = 0;
      for (const h of history) if (h.rev >= w.start && inRange(w, h.key) && !(h.put ? w.noPut : w.noDelete)) last = h.rev;
      return last;
    };
    const caughtUp = async (w: RandWatcher): Promise<void> => {
      if (w.compacted) return s.until((rs) => rs.some((r) => r.watchId === w.id && r.compactRevision !== 0), `watcher ${w.id} compacted`);
      const last = lastExpected(w);
      if (last > 0) await s.eventAt(w.id, last);
      // Nothing to see: there is no signal that it has synced, and etcd syncs every 100 ms, so
      // wait that out (else a compaction right after would catch it unsynced on etcd only).
      else if (w.start <= rev) await sleep(250);
    };
    try {
      for (let step = 0; step < steps; step++) {
        const x = rnd();
        const r = rev + 1;
        let touched: Array<{ key: string; put: boolean }> = [];
        if (x < 0.45) {
          const k = pick(keys);
          await c.put({ key: b(k), value: b(`v${step}`) });
          touched = [{ key: k, put: true }];
        } else if (x < 0.55) {
          const k = pick(keys);
          await c.deleteRange({ key: b(k) });
          if (live.has(k)) touched = [{ key: k, put: false }];
        } else if (x < 0.62) {
          const [from, to] = [pick(keys), pick(keys)].sort();
          await c.deleteRange({ key: b(from!), rangeEnd: b(to!) });
          touched = [...live].filter((k) => k >= from! && k < to!).sort().map((key) => ({ key, put: false }));
        } else if (x < 0.72) {
          const ks = [...new Set([pick(keys), pick(keys), pick(keys)])];
          const puts = ks.map(() => rnd() < 0.7);
          await c.txn(mk.txn({ success: ks.map((k, i) => (puts[i] ? mk.opPut({ key: b(k), value: b(`t${step}`) }) : mk.opDel({ key: b(k) }))) }));
          touched = ks.map((key, i) => ({ key, put: puts[i]! })).filter((t) => t.put || live.has(t.key));
        } else if (x < 0.77 && rev > compactRev + 1) {
          compactRev = compactRev + 1 + Math.floor(rnd() * (rev - compactRev));
          await c.compact({ revision: compactRev, physical: true });
        } else if (x < 0.92) {
          const k = pick(keys);
          const shape = rnd();
          const key = shape < 0.5 ? b(k) : shape < 0.8 ? b(k.slice(0, 3)) : b(k);
          const end = shape < 0.5 ? undefined : shape < 0.8 ? prefixEnd(k.slice(0, 3)) : ALL;
          const when = rnd();
          // Never exactly at the compaction revision: there Concord deliberately differs (etcd #18089).
          let start = when < 0.3 ? 0 : when < 0.5 ? rev + 1 + Math.floor(rnd() * 3) : 1 + Math.floor(rnd() * rev);
          if (start !== 0 && start === compactRev) start++;
          const w: RandWatcher = { id: nextId++, key, end, start: start === 0 ? rev + 1 : start, noPut: rnd() < 0.1, noDelete: rnd() < 0.1, canceled: false, compacted: start !== 0 && start < compactRev };
          const filters = [...(w.noPut ? [WatchCreateRequest_FilterType.NOPUT] : []), ...(w.noDelete ? [WatchCreateRequest_FilterType.NODELETE] : [])];
          s.create({ key, ...(end !== undefined ? { rangeEnd: end } : {}), startRevision: start, watchId: w.id, prevKv: rnd() < 0.5, filters });
          watchers.push(w);
          await s.until((rs) => rs.some((x) => x.watchId === w.id && x.created), `watcher ${w.id} created`);
          if (w.start <= rev) await caughtUp(w); // etcd syncs every 100 ms: let both finish before anything else
        } else {
          const open = watchers.filter((w) => !w.canceled);
          if (open.length > 0) {
            const w = pick(open);
            await caughtUp(w);
            w.canceled = true;
            // A compacted watcher was already answered canceled (with compact_revision), yet both
            // servers answer its cancel too: wait for that answer, not the earlier one, or the
            // next write can race it and its header revision (the store's at the cancel) differs.
            const canceledAnswers = (rs: WatchResponse[]) => rs.filter((x) => x.watchId === w.id && x.canceled).length;
            const before = canceledAnswers(s.responses);
            s.cancel(w.id);
            await s.until((rs) => canceledAnswers(rs) > before, `watcher ${w.id} canceled`);
          }
        }
        if (touched.length > 0) {
          rev = r;
          for (const t of touched) {
            history.push({ rev, key: t.key, put: t.put });
            if (t.put) live.add(t.key); else live.delete(t.key);
          }
        }
      }
      for (const w of watchers) if (!w.canceled) await caughtUp(w);
      return byWatcher(s.responses);
    } finally {
      s.close();
    }
  });
});
