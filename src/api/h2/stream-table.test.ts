import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inChildNode, rng } from '../../testkit/index.js';
import { StreamTable } from './stream-table.js';

test('stream table: get, set, delete, size and list agree with a Map over random work', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const next = rng(seed);
    const table = new StreamTable<string>(2);
    const model = new Map<number, string>();
    for (let step = 0; step < 20_000; step++) {
      // Mostly recent odd ids, as a client opens them, some far apart: both probe shapes.
      const id = next() < 0.8 ? 1 + 2 * Math.floor(next() * 64) : 1 + 2 * Math.floor(next() * 1_000_000);
      const r = next();
      if (r < 0.45) {
        table.set(id, `v${step}`);
        model.set(id, `v${step}`);
      } else if (r < 0.9) {
        assert.equal(table.delete(id), model.delete(id), `seed ${seed} step ${step}: delete ${id}`);
      } else {
        assert.equal(table.get(id), model.get(id), `seed ${seed} step ${step}: get ${id}`);
      }
      assert.equal(table.size, model.size);
    }
    for (const [id, v] of model) assert.equal(table.get(id), v);
    assert.deepEqual(table.list().sort(), [...model.values()].sort());
    table.clear();
    assert.equal(table.size, 0);
    for (const id of model.keys()) assert.equal(table.get(id), undefined);
  }
});

test('stream table: deleting from a probe run that wraps past the last slot keeps every other id found', () => {
  // Ids whose home slot ((id >>> 1) & 7) is 7, 7, 0 and 7: a run 7, 0, 1, 2 that wraps.
  const ids = [15, 31, 1, 47];
  for (const gone of ids) {
    const rest = new StreamTable<number>(8);
    for (const id of ids) rest.set(id, id);
    assert.equal(rest.delete(gone), true);
    for (const id of ids) assert.equal(rest.get(id), id === gone ? undefined : id, `after deleting ${gone}: ${id}`);
    assert.equal(rest.delete(gone), false);
  }
});

test('stream table: refuses ids HTTP/2 cannot have and sizes that are not powers of two', () => {
  const table = new StreamTable<number>();
  for (const bad of [0, -1, 1.5, 2 ** 31, Number.NaN]) assert.throws(() => table.set(bad, 1), RangeError);
  assert.throws(() => new StreamTable<number>(12), RangeError);
});

test('stream table: streams that come and go are not kept alive by scavenges (a Map\'s replaced tables kept them all)', () => {
  // The same churn as a connection's: ten streams opened and closed at a time, through a
  // table a mark-compact has promoted. Two scavenges later whatever they still found
  // reachable has been promoted: the old space's growth is that. Through a Map, every
  // stream's payload is (about 2.2 MiB here): its replaced backing tables stay linked to
  // their successors with their entries, and the dead ones in the old space are roots for a
  // scavenge. The table must let them die young.
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const { StreamTable } = await import(${JSON.stringify(new URL('./stream-table.js', import.meta.url).href)});
    const oldUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space').space_used_size;
    const promotedBy = (table) => {
      for (let id = 1; id < 40; id += 2) table.set(id, {});
      gc(); gc();
      const before = oldUsed();
      let id = 101;
      for (let round = 0; round < 2000; round++) {
        const open = [];
        for (let k = 0; k < 10; k++) { table.set(id, { payload: new Array(64).fill(round) }); open.push(id); id += 2; }
        for (const x of open) table.delete(x);
      }
      gc({ type: 'minor' }); gc({ type: 'minor' });
      return oldUsed() - before;
    };
    const table = promotedBy(new StreamTable());
    const map = promotedBy(new Map());
    process.stdout.write(JSON.stringify({ table, map }));
  `;
  const { table, map } = JSON.parse(inChildNode(['--expose-gc'], script)) as { table: number; map: number };
  const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
  assert.ok(table < 256 * 1024, `the table's churn promoted ${kib(table)} (a Map's: ${kib(map)})`);
});
