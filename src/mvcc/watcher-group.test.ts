import { rng } from '../testkit/index.js';
// WatcherGroup against brute force: random single, prefix, range and from-key watchers, added
// and removed at random; for random keys, the watchers found must be exactly those whose
// range holds the key. Replay with CONCORD_WG_SEED.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WatcherGroup, watchShape, type Watcher } from './watcher-group.js';
import { prefixRangeEnd } from '../proto/index.js';

function holds(w: Watcher, key: Buffer): boolean {
  if (w.end === undefined) return w.key.equals(key);
  return Buffer.compare(key, w.key) >= 0 && (w.end.length === 0 || Buffer.compare(key, w.end) < 0);
}

test('forEachWatching finds exactly the watchers whose range holds the key, across adds and deletes', () => {
  const seed = Number(process.env.CONCORD_WG_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rand = rng(seed);
  const alphabet = [0x00, 0x61, 0x62, 0x63, 0xff];
  const randKey = (): Buffer => Buffer.from(Array.from({ length: Math.floor(rand() * 4) }, () => alphabet[Math.floor(rand() * alphabet.length)]));
  const g = new WatcherGroup();
  const live: Watcher[] = [];
  for (let step = 0; step < 3000; step++) {
    if (rand() < 0.6 || live.length === 0) {
      const key = randKey();
      const x = rand();
      let end: Buffer | undefined = x < 0.3 ? undefined : x < 0.55 ? prefixRangeEnd(key) : x < 0.7 ? Buffer.alloc(0) : randKey();
      if (end !== undefined && end.length === 1 && end[0] === 0) end = Buffer.alloc(0); // "\0": from-key, as the API passes it
      if (end !== undefined && end.length > 0 && Buffer.compare(key, end) >= 0) end = undefined;
      const w: Watcher = { id: step, key, end, ...watchShape(key, end), filterPut: false, filterDelete: false, minRev: 0 };
      g.add(w);
      live.push(w);
    } else {
      const w = live.splice(Math.floor(rand() * live.length), 1)[0]!;
      assert.equal(g.delete(w), true);
    }
    for (let probe = 0; probe < 3; probe++) {
      const key = randKey();
      const found: number[] = [];
      g.forEachWatching(key, (w) => found.push(w.id));
      const want = live.filter((w) => holds(w, key)).map((w) => w.id);
      assert.deepEqual(found.sort((a, b) => a - b), want.sort((a, b) => a - b), `seed ${seed} (CONCORD_WG_SEED), step ${step}, key ${key.toString('hex')}`);
    }
  }
  assert.equal(g.size, live.length);
});
