// KV requests whose bytes etcd's gogoproto Unmarshal refuses are refused with the same words
// (issue 14's session 28 found the gap): a known field sent with another wire type, and
// malformed nested messages (a Txn's Compare and RequestOp, a nested Txn). The generated
// TypeScript codec skipped such a field and stopped at a nested tag of 0, so the request went
// through with the field at its default, and the put fast path proposed the client's bytes as
// they were: an etcd member sharing the cluster cannot unmarshal that entry, and panics.
// Each case runs against real etcd and Concord; neither may write anything.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, type Server } from './harness.js';
import { grpcMessage, rawCall } from './h2raw.js';
import { TxnResponse } from '../src/proto/index.js';

const put = '/etcdserverpb.KV/Put';
const range = '/etcdserverpb.KV/Range';
const txn = '/etcdserverpb.KV/Txn';
const unmarshal = (m: string): string => `grpc: error unmarshalling request: ${m}`;

/** [what, method, request bytes (hex), etcd 3.4's grpc-message]; grpc-status is 13 (Internal) for all. */
const cases: Array<[string, string, string, string]> = [
  ['put: value as a varint', put, '0a016b1005', unmarshal('proto: wrong wireType = 0 for field Value')],
  ['put: key as a varint', put, '08051201' + '76', unmarshal('proto: wrong wireType = 0 for field Key')],
  ['put: lease as bytes', put, '0a016b1a0101', unmarshal('proto: wrong wireType = 2 for field Lease')],
  ['put: lease as fixed64', put, '0a016b190102030405060708', unmarshal('proto: wrong wireType = 1 for field Lease')],
  ['put: a group at the key', put, '0b08010c', unmarshal('proto: wrong wireType = 3 for field Key')],
  ['put: wire type 6 at the key', put, '0e', unmarshal('proto: wrong wireType = 6 for field Key')],
  ['range: limit as bytes', range, '0a016b1a0100', unmarshal('proto: wrong wireType = 2 for field Limit')],
  ['txn: a put op\'s value as a varint', txn, '12071205' + '0a016b1005', unmarshal('proto: wrong wireType = 0 for field Value')],
  ['txn: a compare\'s key as a varint', txn, '0a021805' + '120512030a016b', unmarshal('proto: wrong wireType = 0 for field Key')],
  ['txn: a group at a compare\'s result', txn, '0a020b0c', unmarshal('proto: wrong wireType = 3 for field Result')],
  ['txn: a RequestOp with a tag of 0', txn, '12020000', unmarshal('proto: RequestOp: illegal tag 0 (wire type 0)')],
  ['txn: a nested txn with a tag of 0', txn, '120422020000', unmarshal('proto: TxnRequest: illegal tag 0 (wire type 0)')],
  // A length with bit 63 set is a negative Go int to gogoproto (Concord said "unexpected EOF").
  ['put: a key of negative length', put, '0a' + 'ffffffffffffffffff01', unmarshal('proto: negative length found during unmarshaling')],
  ['put: an unknown field of negative length', put, '9a01' + 'ffffffffffffffffff01', unmarshal('proto: negative length found during unmarshaling')],
  ['txn: a RequestOp of negative length', txn, '12' + '80808080808080808001', unmarshal('proto: negative length found during unmarshaling')],
  ['txn: a compare\'s key past the compare', txn, '0a041a056b6b', unmarshal('unexpected EOF')],
];

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** Runs `body` against a fresh server of each selected target, with a client closed afterwards. */
function onEachTarget(title: string, body: (s: Server, c: ReturnType<Server['client']>) => Promise<void>): void {
  describe(title, () => {
    for (const target of selectedTargets()) {
      test(target, async () => {
        const s = await startServer({ target });
        servers.push(s);
        const c = s.client();
        try {
          await body(s, c);
        } finally {
          c.close();
        }
      });
    }
  });
}

onEachTarget('KV requests with malformed fields are refused in etcd\'s words, and write nothing', async (s, c) => {
  const before = (await c.status()).header!.revision;
  const answers = [];
  for (const [what, method, hex] of cases) {
    const r = await rawCall(s.endpoint, method, grpcMessage(Buffer.from(hex, 'hex')), {}, 10_000);
    answers.push(`${what}: ${r.grpcStatus} ${r.grpcMessage}`);
  }
  assert.deepEqual(answers, cases.map(([what, , , message]) => `${what}: 13 ${message}`));
  // A well-formed put still goes through: the checks refuse only what etcd refuses.
  const ok = await rawCall(s.endpoint, put, grpcMessage(Buffer.from('0a016b1201' + '76', 'hex')), {}, 10_000);
  assert.equal(ok.grpcStatus, '0');
  assert.equal((await c.status()).header!.revision, before + 1, 'only the well-formed put wrote');
});

// A oneof keeps the last member on the wire (gogoproto's Unmarshal), which a hostile client
// can make differ from the first in field order: Concord took the first (ts-proto keeps every
// member), so these txns ran another op, or compared with another value, than etcd's.
// [what, Txn request bytes (hex), keys read afterwards, what etcd answers: succeeded, the
// responses' kinds, the keys' values]
const oneofCases: Array<[string, string, string[], string]> = [
  // success: one RequestOp holding put(a=1) then deleteRange(b): etcd runs the delete.
  ['a RequestOp with a put, then a delete', '120d' + '12060a0161120131' + '1a030a0162', ['a', 'b'], 'true [responseDeleteRange] a=- b=-'],
  // the same two members the other way round: the put.
  ['a RequestOp with a delete, then a put', '120d' + '1a030a0163' + '12060a0164120131', ['c', 'd'], 'true [responsePut] c=c d=1'],
  // compare(target VALUE, key x, value "x", then version 0), success put(y=1): the union holds
  // the version, and a VALUE compare reads no value: "x" != "", so the failure branch (empty).
  ['a Compare with a value, then a version', '0a0a' + '10031a01783a01782000' + '1208' + '12060a0179120131', ['y'], 'false [] y=-'],
  // version first, then the value: the value compares equal.
  ['a Compare with a version, then a value', '0a0a' + '10031a017820003a0178' + '1208' + '12060a017a120131', ['z'], 'true [responsePut] z=1'],
];

onEachTarget('a oneof keeps the last member on the wire, as etcd\'s gogoproto does', async (s, c) => {
  for (const k of ['b', 'c', 'x']) await c.put({ key: Buffer.from(k), value: Buffer.from(k) });
  const seen = [];
  for (const [what, hex, keys] of oneofCases) {
    const r = await rawCall(s.endpoint, txn, grpcMessage(Buffer.from(hex, 'hex')), {}, 10_000);
    assert.equal(r.grpcStatus, '0', `${what}: ${r.grpcMessage}`);
    const res = TxnResponse.decode(r.body.subarray(5));
    const kinds = res.responses.map((op) => Object.entries(op).find(([, v]) => v !== undefined)?.[0] ?? 'none');
    const values = [];
    for (const k of keys) values.push(`${k}=${(await c.range({ key: Buffer.from(k) })).kvs[0]?.value.toString() ?? '-'}`);
    seen.push(`${what}: ${res.succeeded} [${kinds.join(' ')}] ${values.join(' ')}`);
  }
  assert.deepEqual(seen, oneofCases.map(([what, , , want]) => `${what}: ${want}`));
});
