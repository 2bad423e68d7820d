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
  ['txn: a compare\'s key past the compare', txn, '0a041a056b6b', unmarshal('unexpected EOF')],
];

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

describe('KV requests with malformed fields are refused in etcd\'s words, and write nothing', () => {
  for (const target of selectedTargets()) {
    test(target, async () => {
      const s = await startServer({ target });
      servers.push(s);
      const c = s.client();
      try {
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
      } finally {
        c.close();
      }
    });
  }
});
