// Differential tests: the same KV operation sequences against real etcd 3.4 and Concord, the
// decoded gRPC responses compared field by field (cluster_id, member_id and raft_term aside;
// revisions must match, since both servers start empty at revision 1 and see the same writes).
// Where a step has a known oracle outcome (errors) it is also asserted absolutely, so the file
// still pins behaviour when only one target runs (see harness.ts for the env switches).
// CONCORD_DIFF_RANDOM_OPS (default 300) and CONCORD_DIFF_SEED control the randomized sequence.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, selectedTargets, normalize, b, mk, prefixEnd, httpGet, type Server, type EtcdClient,
  type Outcome, type TargetName,
} from './harness.js';
import { RangeRequest_SortOrder as SortOrder, RangeRequest_SortTarget as SortTarget, Compare_CompareResult as CR, Compare_CompareTarget as CT } from '../src/proto/gen/etcdserverpb/rpc.js';

const MAX_TXN_OPS = 8;
const MAX_REQUEST_BYTES = 8192;

interface Node { target: TargetName; server: Server; client: EtcdClient }
const nodes: Node[] = [];

before(async () => {
  for (const target of selectedTargets()) {
    const server = await startServer({
      target,
      extraArgs: ['--max-txn-ops', String(MAX_TXN_OPS), '--max-request-bytes', String(MAX_REQUEST_BYTES)],
    });
    nodes.push({ target, server, client: server.client() });
  }
});

after(async () => {
  for (const n of nodes) { n.client.close(); await n.server.destroy(); }
});

type Kind = 'range' | 'put' | 'delete' | 'txn' | 'compact';

/** Run one op on every target, assert the normalized outcomes equal; return the first outcome. */
async function step(label: string, kind: Kind, req: any, expect?: { code: number; message: string }): Promise<Outcome<any>> {
  const outs: Outcome<any>[] = [];
  for (const n of nodes) outs.push(await n.client.op(kind as any, req));
  const norm = outs.map((o) => normalize(o));
  for (let i = 1; i < nodes.length; i++) {
    assert.deepStrictEqual(norm[i], norm[0],
      `${label}: ${nodes[i]!.target} differs from ${nodes[0]!.target}\nrequest: ${JSON.stringify(normalize(req))}`);
  }
  if (expect) {
    for (let i = 0; i < nodes.length; i++) {
      const o = outs[i]!;
      assert.ok(!o.ok, `${label}: ${nodes[i]!.target} succeeded, expected error ${expect.message}`);
      if (!o.ok) assert.deepStrictEqual({ code: o.code, message: o.message }, expect, `${label} (${nodes[i]!.target})`);
    }
  }
  return outs[0]!;
}
const okRes = (o: Outcome<any>): any => { assert.ok(o.ok, `unexpected error ${JSON.stringify(normalize(o))}`); return (o as any).res; };

const SORT_ORDERS = [SortOrder.NONE, SortOrder.ASCEND, SortOrder.DESCEND];
const SORT_TARGETS = [SortTarget.KEY, SortTarget.VERSION, SortTarget.CREATE, SortTarget.MOD, SortTarget.VALUE];

describe('differential: KV against etcd and Concord', () => {
  test('puts, overwrites and prev_kv return the same headers and previous values', async () => {
    await step('put a', 'put', { key: b('a'), value: b('1') });
    await step('put a prev', 'put', { key: b('a'), value: b('2'), prevKv: true });
    await step('put b', 'put', { key: b('b'), value: b('x'), prevKv: true });
    for (let i = 0; i < 6; i++) await step(`put p/${i}`, 'put', { key: b(`p/${i}`), value: b(`v${5 - i}`) });
    await step('overwrite p/2', 'put', { key: b('p/2'), value: b('zz'), prevKv: true });
    await step('overwrite p/2 again', 'put', { key: b('p/2'), value: b('a0'), prevKv: true });
    await step('put binary key', 'put', { key: Buffer.from([0, 1, 0xff]), value: Buffer.from([0xfe, 0]) });
    await step('put empty value', 'put', { key: b('empty'), value: Buffer.alloc(0), prevKv: true });
    await step('ignore_value keeps value', 'put', { key: b('p/3'), ignoreValue: true, prevKv: true });
    await step('ignore_lease', 'put', { key: b('p/4'), value: b('L'), ignoreLease: true });
    await step('ignore_value on missing key', 'put', { key: b('nope'), ignoreValue: true }, { code: 3, message: 'etcdserver: key not found' });
    await step('ignore_value with value', 'put', { key: b('p/3'), value: b('x'), ignoreValue: true }, { code: 3, message: 'etcdserver: value is provided' });
    await step('range all', 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
  });

  test('ranges with every option match (prefix, from-key, limit, revision, sort, keys/count only, filters)', async () => {
    const P = b('p/');
    const PE = prefixEnd('p/');
    await step('single key', 'range', { key: b('a') });
    await step('missing key', 'range', { key: b('zzz') });
    await step('prefix', 'range', { key: P, rangeEnd: PE });
    await step('range [p/1, p/4)', 'range', { key: b('p/1'), rangeEnd: b('p/4') });
    await step('from-key "\\0"', 'range', { key: b('b'), rangeEnd: Buffer.from([0]) });
    await step('all keys', 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
    await step('range_end < key', 'range', { key: b('p/4'), rangeEnd: b('p/1') });
    for (const limit of [1, 2, 5, 6, 7, 100]) await step(`limit ${limit}`, 'range', { key: P, rangeEnd: PE, limit });
    await step('negative limit', 'range', { key: P, rangeEnd: PE, limit: -1 });
    for (const rev of [1, 2, 3, 5, 8, 10]) {
      await step(`revision ${rev}`, 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), revision: rev });
      await step(`revision ${rev} prefix limit 2`, 'range', { key: P, rangeEnd: PE, revision: rev, limit: 2 });
    }
    const cur = okRes(await step('current', 'range', { key: b('a') })).header.revision as number;
    await step('future revision', 'range', { key: b('a'), revision: cur + 1 }, { code: 11, message: 'etcdserver: mvcc: required revision is a future revision' });
    await step('far future revision', 'range', { key: b('a'), revision: cur + 1000 }, { code: 11, message: 'etcdserver: mvcc: required revision is a future revision' });
    // Sorting: at most 12 results per sorted range, where Go's sort.Sort is an insertion sort
    // (stable), so ties are ordered deterministically by key on both servers.
    for (const sortOrder of SORT_ORDERS) for (const sortTarget of SORT_TARGETS) {
      await step(`sort ${sortOrder}/${sortTarget}`, 'range', { key: P, rangeEnd: PE, sortOrder, sortTarget });
      await step(`sort ${sortOrder}/${sortTarget} limit 3`, 'range', { key: P, rangeEnd: PE, sortOrder, sortTarget, limit: 3 });
    }
    await step('keys_only', 'range', { key: P, rangeEnd: PE, keysOnly: true });
    await step('count_only', 'range', { key: P, rangeEnd: PE, countOnly: true });
    await step('count_only limit', 'range', { key: P, rangeEnd: PE, countOnly: true, limit: 2 });
    await step('keys_only + count_only', 'range', { key: P, rangeEnd: PE, countOnly: true, keysOnly: true });
    await step('serializable', 'range', { key: P, rangeEnd: PE, serializable: true });
    for (const f of [
      { minModRevision: 5 }, { maxModRevision: 6 }, { minCreateRevision: 6 }, { maxCreateRevision: 5 },
      { minModRevision: 4, maxModRevision: 9 }, { minCreateRevision: 4, maxCreateRevision: 7, limit: 2 },
      { minModRevision: 1000 }, { minModRevision: 5, sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.MOD },
      { maxModRevision: 6, keysOnly: true }, { minCreateRevision: 5, countOnly: true },
    ]) {
      await step(`filter ${JSON.stringify(f)}`, 'range', { key: P, rangeEnd: PE, ...f });
    }
  });

  test('sorted ranges with many ties come back in etcd\'s order (Go\'s unstable sort.Sort)', async () => {
    // 70 keys, values from a set of 3, some overwritten: long runs of equal versions and values,
    // past the 12-element insertion-sort cutoff and the 50-element ninther threshold.
    for (let i = 0; i < 70; i++) await step(`tie put ${i}`, 'put', { key: b(`tie/${String((i * 37) % 70).padStart(2, '0')}`), value: b('abc'[i % 3]!) });
    for (let i = 0; i < 70; i += 4) await step(`tie overwrite ${i}`, 'put', { key: b(`tie/${String(i).padStart(2, '0')}`), value: b('cab'[i % 3]!) });
    const T = b('tie/');
    const TE = prefixEnd('tie/');
    for (const sortOrder of SORT_ORDERS) for (const sortTarget of SORT_TARGETS) {
      await step(`tie sort ${sortOrder}/${sortTarget}`, 'range', { key: T, rangeEnd: TE, sortOrder, sortTarget });
      await step(`tie sort ${sortOrder}/${sortTarget} limit 20`, 'range', { key: T, rangeEnd: TE, sortOrder, sortTarget, limit: 20 });
    }
  });

  test('deletes with prev_kv and ranges report deleted counts and previous values alike', async () => {
    await step('delete missing', 'delete', { key: b('missing'), prevKv: true });
    await step('delete b', 'delete', { key: b('b'), prevKv: true });
    await step('delete b again', 'delete', { key: b('b'), prevKv: true });
    await step('delete range p/1..p/3', 'delete', { key: b('p/1'), rangeEnd: b('p/3'), prevKv: true });
    await step('delete range no prev', 'delete', { key: b('p/3'), rangeEnd: b('p/4') });
    await step('range after deletes', 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
    await step('recreate p/1', 'put', { key: b('p/1'), value: b('again'), prevKv: true });
    await step('range p/1', 'range', { key: b('p/1') });
    await step('old revision sees deleted key', 'range', { key: b('p/1'), revision: 8 });
    await step('delete from-key', 'delete', { key: b('p/5'), rangeEnd: Buffer.from([0]), prevKv: true });
    for (let i = 0; i < 5; i++) await step(`put q/${i}`, 'put', { key: b(`q/${i}`), value: b(`q${i}`) });
    await step('delete prefix q/', 'delete', { key: b('q/'), rangeEnd: prefixEnd('q/') });
    await step('range all after', 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
  });

  test('txns: every compare target and result, range compares, nested txns, failure branches', async () => {
    await step('setup t/a', 'put', { key: b('t/a'), value: b('1') });
    await step('setup t/b', 'put', { key: b('t/b'), value: b('2') });
    await step('setup t/b 2', 'put', { key: b('t/b'), value: b('3') });
    const cur = okRes(await step('rev', 'range', { key: b('t/a') })).header.revision as number;
    const targets: Array<[string, CT, any]> = [
      ['version', CT.VERSION, { version: 1n }],
      ['create', CT.CREATE, { createRevision: BigInt(cur - 2) }],
      ['mod', CT.MOD, { modRevision: BigInt(cur) }],
      ['value', CT.VALUE, { value: b('2') }],
      ['lease', CT.LEASE, { lease: 0n }],
    ];
    for (const [name, target, val] of targets) {
      for (const result of [CR.EQUAL, CR.GREATER, CR.LESS, CR.NOT_EQUAL]) {
        for (const key of ['t/a', 't/b', 't/missing']) {
          await step(`txn ${name} ${result} ${key}`, 'txn', {
            compare: [mk.cmp({ key: b(key), target, result, ...val })],
            success: [mk.opRange({ key: b(key) })],
            failure: [mk.opRange({ key: b('t/'), rangeEnd: prefixEnd('t/'), countOnly: true })],
          });
        }
      }
    }
    await step('range compare version > 0 over prefix', 'txn', {
      compare: [mk.cmp({ key: b('t/'), rangeEnd: prefixEnd('t/'), target: CT.VERSION, result: CR.GREATER, version: 0n })],
      success: [mk.opPut({ key: b('t/c'), value: b('c'), prevKv: true })],
    });
    await step('range compare mod < rev over prefix (fails)', 'txn', {
      compare: [mk.cmp({ key: b('t/'), rangeEnd: prefixEnd('t/'), target: CT.MOD, result: CR.LESS, modRevision: BigInt(cur) })],
      success: [mk.opPut({ key: b('t/never'), value: b('x') })],
      failure: [mk.opDel({ key: b('t/c'), prevKv: true }), mk.opRange({ key: b('t/'), rangeEnd: prefixEnd('t/') })],
    });
    await step('range compare from-key', 'txn', {
      compare: [mk.cmp({ key: b('t/'), rangeEnd: Buffer.from([0]), target: CT.VALUE, result: CR.NOT_EQUAL, value: b('zzz') })],
      success: [mk.opRange({ key: b('t/a') })],
    });
    await step('multiple compares, one false', 'txn', {
      compare: [
        mk.cmp({ key: b('t/a'), target: CT.VALUE, result: CR.EQUAL, value: b('1') }),
        mk.cmp({ key: b('t/b'), target: CT.VERSION, result: CR.EQUAL, version: 7n }),
      ],
      success: [mk.opPut({ key: b('t/x'), value: b('s') })],
      failure: [mk.opPut({ key: b('t/y'), value: b('f'), prevKv: true }), mk.opRange({ key: b('t/y') })],
    });
    await step('mixed success ops, one revision', 'txn', {
      compare: [],
      success: [
        mk.opPut({ key: b('t/m1'), value: b('1') }),
        mk.opPut({ key: b('t/m2'), value: b('2'), prevKv: true }),
        mk.opDel({ key: b('t/y'), prevKv: true }),
        mk.opRange({ key: b('t/'), rangeEnd: prefixEnd('t/') }),
      ],
    });
    await step('read-only txn keeps revision', 'txn', { success: [mk.opRange({ key: b('t/a') })] });
    await step('empty txn', 'txn', {});
    await step('nested txn', 'txn', {
      compare: [mk.cmp({ key: b('t/a'), target: CT.VERSION, result: CR.GREATER, version: 0n })],
      success: [
        mk.opPut({ key: b('t/n0'), value: b('outer') }),
        mk.opTxn({
          compare: [mk.cmp({ key: b('t/b'), target: CT.VALUE, result: CR.EQUAL, value: b('3') })],
          success: [mk.opPut({ key: b('t/n1'), value: b('inner'), prevKv: true }), mk.opRange({ key: b('t/n0') })],
          failure: [mk.opDel({ key: b('t/a') })],
        }),
        mk.opTxn({
          compare: [mk.cmp({ key: b('t/b'), target: CT.VALUE, result: CR.EQUAL, value: b('nope') })],
          success: [mk.opPut({ key: b('t/n2'), value: b('no') })],
          failure: [mk.opRange({ key: b('t/n1') }), mk.opTxn({ success: [mk.opRange({ key: b('t/b') })] })],
        }),
      ],
    });
    await step('range after txns', 'range', { key: b('t/'), rangeEnd: prefixEnd('t/') });
    await step('txn range at old revision', 'txn', { success: [mk.opRange({ key: b('t/b'), revision: cur - 1 })] });
    await step('txn range at future revision', 'txn', { success: [mk.opRange({ key: b('t/b'), revision: cur + 10_000 })] });
  });

  test('error cases return etcd\'s codes and messages', async () => {
    await step('put empty key', 'put', { key: Buffer.alloc(0), value: b('v') }, { code: 3, message: 'etcdserver: key is not provided' });
    await step('range empty key', 'range', { key: Buffer.alloc(0) }, { code: 3, message: 'etcdserver: key is not provided' });
    await step('delete empty key', 'delete', { key: Buffer.alloc(0) }, { code: 3, message: 'etcdserver: key is not provided' });
    await step('txn put empty key', 'txn', { success: [mk.opPut({ key: Buffer.alloc(0), value: b('v') })] }, { code: 3, message: 'etcdserver: key is not provided' });
    const ops = Array.from({ length: MAX_TXN_OPS + 1 }, (_, i) => mk.opPut({ key: b(`e/${i}`), value: b('v') }));
    await step('too many ops in success', 'txn', { success: ops }, { code: 3, message: 'etcdserver: too many operations in txn request' });
    await step('too many ops in failure', 'txn', { failure: ops }, { code: 3, message: 'etcdserver: too many operations in txn request' });
    const cmps = Array.from({ length: MAX_TXN_OPS + 1 }, (_, i) => mk.cmp({ key: b(`e/${i}`), target: CT.VERSION, version: 0n }));
    await step('too many compares', 'txn', { compare: cmps }, { code: 3, message: 'etcdserver: too many operations in txn request' });
    await step('exactly max ops', 'txn', { success: ops.slice(0, MAX_TXN_OPS) });
    await step('duplicate put keys', 'txn', { success: [mk.opPut({ key: b('d'), value: b('1') }), mk.opPut({ key: b('d'), value: b('2') })] },
      { code: 3, message: 'etcdserver: duplicate key given in txn request' });
    await step('put inside deleted range', 'txn', { success: [mk.opDel({ key: b('d/'), rangeEnd: prefixEnd('d/') }), mk.opPut({ key: b('d/1'), value: b('2') })] },
      { code: 3, message: 'etcdserver: duplicate key given in txn request' });
    await step('same key in success and failure is fine', 'txn', { success: [mk.opPut({ key: b('d'), value: b('1') })], failure: [mk.opPut({ key: b('d'), value: b('2') })] });
    await step('two deletes overlap is fine', 'txn', { success: [mk.opDel({ key: b('d/'), rangeEnd: prefixEnd('d/') }), mk.opDel({ key: b('d/1') })] });
    await step('duplicate put in nested txn', 'txn', {
      success: [mk.opPut({ key: b('d'), value: b('1') }), mk.opTxn({ success: [mk.opPut({ key: b('d'), value: b('2') })] })],
    }, { code: 3, message: 'etcdserver: duplicate key given in txn request' });
    await step('oversized put', 'put', { key: b('big'), value: Buffer.alloc(MAX_REQUEST_BYTES + 100, 0x61) }, { code: 3, message: 'etcdserver: request is too large' });
    await step('oversized txn', 'txn', { success: [mk.opPut({ key: b('big'), value: Buffer.alloc(MAX_REQUEST_BYTES + 100, 0x61) })] }, { code: 3, message: 'etcdserver: request is too large' });
    await step('just under the limit', 'put', { key: b('big'), value: Buffer.alloc(MAX_REQUEST_BYTES - 100, 0x61) });
    await step('lease not found', 'put', { key: b('l'), value: b('v'), lease: 12345n }, { code: 5, message: 'etcdserver: requested lease not found' });
    await step('lease not found in txn', 'txn', { success: [mk.opPut({ key: b('l'), value: b('v'), lease: 777n })] }, { code: 5, message: 'etcdserver: requested lease not found' });
    await step('nothing written by failed requests', 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), keysOnly: true });
  });

  test('edge cases: 0xff keys, odd compare unions, revision 0 and negative values', async () => {
    await step('put ff key', 'put', { key: Buffer.from([0xff]), value: b('ff') });
    await step('put ff ff key', 'put', { key: Buffer.from([0xff, 0xff]), value: b('ffff') });
    await step('prefix of 0xff (range_end \\0)', 'range', { key: Buffer.from([0xff]), rangeEnd: prefixEnd(Buffer.from([0xff])) });
    await step('from 0xff', 'range', { key: Buffer.from([0xff]), rangeEnd: Buffer.from([0]) });
    await step('range_end equal to key', 'range', { key: b('a'), rangeEnd: b('a') });
    await step('negative revision', 'range', { key: b('a'), revision: -5 });
    await step('negative min/max filters', 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), minModRevision: -1, maxCreateRevision: -1, keysOnly: true });
    await step('compare VALUE with no value set', 'txn', { compare: [mk.cmp({ key: b('empty'), target: CT.VALUE, result: CR.EQUAL })], success: [mk.opRange({ key: b('empty') })] });
    await step('compare VERSION with a value union', 'txn', { compare: [mk.cmp({ key: b('a'), target: CT.VERSION, result: CR.GREATER, value: b('zz') })] });
    await step('compare LEASE on a key without lease', 'txn', { compare: [mk.cmp({ key: b('a'), target: CT.LEASE, result: CR.EQUAL, lease: 0n })], success: [mk.opRange({ key: b('a') })] });
    await step('compare on missing key: version 0', 'txn', { compare: [mk.cmp({ key: b('nokey'), target: CT.VERSION, result: CR.EQUAL, version: 0n })] });
    await step('compare on missing key: create < 5', 'txn', { compare: [mk.cmp({ key: b('nokey'), target: CT.CREATE, result: CR.LESS, createRevision: 5n })] });
    await step('compare on missing key: value !=', 'txn', { compare: [mk.cmp({ key: b('nokey'), target: CT.VALUE, result: CR.NOT_EQUAL, value: b('x') })] });
    await step('compare over empty range', 'txn', { compare: [mk.cmp({ key: b('zz/'), rangeEnd: prefixEnd('zz/'), target: CT.VERSION, result: CR.EQUAL, version: 0n })] });
    await step('delete range_end < key', 'delete', { key: b('p/4'), rangeEnd: b('p/1'), prevKv: true });
    await step('put same value again bumps version', 'put', { key: b('a'), value: b('2'), prevKv: true });
    await step('compact revision 0', 'compact', { revision: 0 });
    await step('compact negative', 'compact', { revision: -1 });
  });

  test('compaction: ranges at compacted and future revisions fail alike, history above survives', async () => {
    for (let i = 0; i < 4; i++) await step(`put c/${i}`, 'put', { key: b('c/k'), value: b(`v${i}`), prevKv: true });
    const cur = okRes(await step('rev', 'range', { key: b('c/k') })).header.revision as number;
    await step('compact future', 'compact', { revision: cur + 5 }, { code: 11, message: 'etcdserver: mvcc: required revision is a future revision' });
    await step('compact', 'compact', { revision: cur - 2, physical: true });
    await step('compact again same', 'compact', { revision: cur - 2 }, { code: 11, message: 'etcdserver: mvcc: required revision has been compacted' });
    await step('compact lower', 'compact', { revision: cur - 3 }, { code: 11, message: 'etcdserver: mvcc: required revision has been compacted' });
    await step('range below compaction', 'range', { key: b('c/k'), revision: cur - 3 }, { code: 11, message: 'etcdserver: mvcc: required revision has been compacted' });
    await step('range at revision 1', 'range', { key: b('c/k'), revision: 1 }, { code: 11, message: 'etcdserver: mvcc: required revision has been compacted' });
    await step('range at compaction rev', 'range', { key: b('c/k'), revision: cur - 2 });
    await step('range above compaction', 'range', { key: b('c/k'), revision: cur - 1 });
    await step('range all at compaction rev', 'range', { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), revision: cur - 2, keysOnly: true });
    await step('range future', 'range', { key: b('c/k'), revision: cur + 1 }, { code: 11, message: 'etcdserver: mvcc: required revision is a future revision' });
    await step('txn range below compaction', 'txn', { success: [mk.opRange({ key: b('c/k'), revision: cur - 3 })] });
    await step('compact to current', 'compact', { revision: cur });
    await step('put after compaction', 'put', { key: b('c/k'), value: b('after'), prevKv: true });
    await step('range after', 'range', { key: b('c/'), rangeEnd: prefixEnd('c/') });
  });

  test('a seeded random sequence of puts, deletes, ranges, txns and compactions matches', async () => {
    const seed = Number(process.env.CONCORD_DIFF_SEED ?? (Date.now() % 1_000_000));
    const n = Number(process.env.CONCORD_DIFF_RANDOM_OPS ?? 300);
    console.log(`# differential random sequence: seed ${seed} (CONCORD_DIFF_SEED=${seed} to replay), ${n} ops`);
    const rnd = mulberry32(seed);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    const keys = Array.from({ length: 10 }, (_, i) => `r/${String.fromCharCode(97 + i)}`);
    const key = () => b(pick(keys));
    const rangeOf = (): { key: Buffer; rangeEnd?: Buffer } => {
      const r = rnd();
      if (r < 0.4) return { key: key() };
      if (r < 0.6) return { key: b('r/'), rangeEnd: prefixEnd('r/') };
      if (r < 0.8) { const [x, y] = [pick(keys), pick(keys)].sort(); return { key: b(x!), rangeEnd: b(y!) }; }
      return { key: key(), rangeEnd: Buffer.from([0]) };
    };
    let rev = okRes(await step('rev', 'range', { key: b('r/a') })).header.revision as number;
    const firstRev = rev;
    const randRange = () => ({
      ...rangeOf(),
      limit: rnd() < 0.3 ? Math.floor(rnd() * 5) : 0,
      revision: rnd() < 0.2 ? firstRev + Math.floor(rnd() * (rev - firstRev + 1)) : 0,
      sortOrder: rnd() < 0.3 ? pick(SORT_ORDERS) : SortOrder.NONE,
      sortTarget: rnd() < 0.3 ? pick(SORT_TARGETS) : SortTarget.KEY,
      keysOnly: rnd() < 0.1,
      countOnly: rnd() < 0.1,
      minModRevision: rnd() < 0.1 ? firstRev + Math.floor(rnd() * (rev - firstRev + 1)) : 0,
      maxCreateRevision: rnd() < 0.1 ? firstRev + Math.floor(rnd() * (rev - firstRev + 1)) : 0,
    });
    const randPut = () => ({ key: key(), value: b(`v${Math.floor(rnd() * 1000)}`), prevKv: rnd() < 0.5 });
    const randDel = () => ({ ...rangeOf(), prevKv: rnd() < 0.5 });
    const randCmp = () => {
      const target = pick([CT.VERSION, CT.CREATE, CT.MOD, CT.VALUE]);
      const r = rangeOf();
      const x = firstRev + Math.floor(rnd() * (rev - firstRev + 2));
      const val = target === CT.VERSION ? { version: BigInt(Math.floor(rnd() * 4)) }
        : target === CT.CREATE ? { createRevision: BigInt(x) }
          : target === CT.MOD ? { modRevision: BigInt(x) } : { value: b(`v${Math.floor(rnd() * 1000)}`) };
      return mk.cmp({ ...r, target, result: pick([CR.EQUAL, CR.GREATER, CR.LESS, CR.NOT_EQUAL]), ...val });
    };
    const randOps = () => Array.from({ length: Math.floor(rnd() * 3) }, () => {
      const r = rnd();
      return r < 0.4 ? mk.opPut(randPut()) : r < 0.6 ? mk.opDel(randDel()) : mk.opRange(randRange());
    });
    for (let i = 0; i < n; i++) {
      const r = rnd();
      let out: Outcome<any>;
      if (r < 0.01) {
        // Compact somewhere in the history seen so far (ranges below it then fail alike).
        out = await step(`#${i} compact`, 'compact', { revision: firstRev + Math.floor(rnd() * (rev - firstRev + 1)), physical: rnd() < 0.5 });
      } else if (r < 0.35) out = await step(`#${i} put`, 'put', randPut());
      else if (r < 0.45) out = await step(`#${i} delete`, 'delete', randDel());
      else if (r < 0.75) out = await step(`#${i} range`, 'range', randRange());
      else out = await step(`#${i} txn`, 'txn', { compare: Array.from({ length: Math.floor(rnd() * 3) }, randCmp), success: randOps(), failure: randOps() });
      if (out.ok) rev = Math.max(rev, out.res.header.revision);
    }
    await step('final state', 'range', { key: b('r/'), rangeEnd: prefixEnd('r/') });
  });
});

describe('differential: maintenance and HTTP against etcd and Concord', () => {
  test('HashKV over the same history gives the same hash and compact revision', async () => {
    const outs = [];
    for (const n of nodes) {
      const h = await n.client.hashKV(0);
      outs.push({ hash: h.hash, compactRevision: h.compactRevision, revision: h.header!.revision });
    }
    for (let i = 1; i < outs.length; i++) assert.deepStrictEqual(outs[i], outs[0], `HashKV: ${nodes[i]!.target} differs from ${nodes[0]!.target}`);
  });

  test('GET /health and /version answer as etcd does', async () => {
    const outs = [];
    for (const n of nodes) {
      const h = await httpGet(`${n.server.endpoint}/health`);
      const v = await httpGet(`${n.server.endpoint}/version`);
      outs.push({ health: h.status, healthBody: JSON.parse(h.body), version: v.status, versionBody: JSON.parse(v.body) });
    }
    for (let i = 0; i < outs.length; i++) {
      assert.deepStrictEqual(outs[i]!.healthBody, { health: 'true' }, nodes[i]!.target);
      assert.match(outs[i]!.versionBody.etcdserver, /^3\.4\.\d+$/, nodes[i]!.target);
      assert.equal(outs[i]!.versionBody.etcdcluster, '3.4.0', nodes[i]!.target);
    }
    for (let i = 1; i < outs.length; i++) assert.deepStrictEqual(outs[i], outs[0], `HTTP: ${nodes[i]!.target} differs from ${nodes[0]!.target}`);
  });

  test('Status agrees on version, errors and learner flag; Compact/Defragment keep the data', async () => {
    const outs = [];
    for (const n of nodes) {
      const st = await n.client.status();
      assert.equal(st.leader, st.header!.memberId, `${n.target}: a one-member cluster leads itself`);
      assert.ok(st.raftAppliedIndex > 0 && st.raftIndex >= st.raftAppliedIndex, `${n.target}: raft indexes`);
      assert.ok(st.dbSize > 0 && st.dbSizeInUse > 0 && st.dbSizeInUse <= st.dbSize, `${n.target}: db sizes`);
      const before = await n.client.range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
      await n.client.defragment();
      const after = await n.client.range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
      assert.deepStrictEqual(normalize(after), normalize(before), `${n.target}: defragment keeps every key`);
      const ml = await n.client.memberList();
      outs.push({
        version: st.version, errors: st.errors, isLearner: st.isLearner, revision: st.header!.revision,
        members: ml.members.map((m) => ({ name: m.name, isLearner: m.isLearner, peers: m.peerURLs.length, clients: m.clientURLs.length, idIsMe: m.ID === st.header!.memberId })),
      });
    }
    for (let i = 1; i < outs.length; i++) assert.deepStrictEqual(outs[i], outs[0], `Status: ${nodes[i]!.target} differs from ${nodes[0]!.target}`);
  });
});

function mulberry32(a: number): () => number {
  return () => {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
