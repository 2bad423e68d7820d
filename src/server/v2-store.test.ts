// etcd's v2 store JSON in raft snapshots: what Concord writes has the shape etcd 3.4's own
// snapshots have (compared with one taken from real etcd), and reads back to the membership.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Membership } from './membership.js';
import { membershipOfSnapshotData, membershipOfV2Store, v2StoreOfMembership } from './v2-store.js';

/** The Root of a snapshot etcd 3.4.23 saved (1 member, published, cluster version 3.4.0). */
const etcdRoot = {
  Path: '/', CreatedIndex: 0, ModifiedIndex: 0, ExpireTime: '0001-01-01T00:00:00Z', Value: '', Children: {
    0: {
      Path: '/0', CreatedIndex: 0, ModifiedIndex: 0, ExpireTime: '0001-01-01T00:00:00Z', Value: '', Children: {
        members: {
          Path: '/0/members', CreatedIndex: 1, ModifiedIndex: 1, ExpireTime: '0001-01-01T00:00:00Z', Value: '', Children: {
            '8f02e7a890b0feea': {
              Path: '/0/members/8f02e7a890b0feea', CreatedIndex: 1, ModifiedIndex: 1, ExpireTime: '0001-01-01T00:00:00Z', Value: '', Children: {
                attributes: { Path: '/0/members/8f02e7a890b0feea/attributes', CreatedIndex: 2, ModifiedIndex: 2, ExpireTime: '0001-01-01T00:00:00Z', Value: '{"name":"default","clientURLs":["http://127.0.0.1:49587"]}', Children: null },
                raftAttributes: { Path: '/0/members/8f02e7a890b0feea/raftAttributes', CreatedIndex: 1, ModifiedIndex: 1, ExpireTime: '0001-01-01T00:00:00Z', Value: '{"peerURLs":["http://127.0.0.1:34549"]}', Children: null },
              },
            },
          },
        },
        version: { Path: '/0/version', CreatedIndex: 3, ModifiedIndex: 3, ExpireTime: '0001-01-01T00:00:00Z', Value: '3.4.0', Children: null },
      },
    },
    1: { Path: '/1', CreatedIndex: 0, ModifiedIndex: 0, ExpireTime: '0001-01-01T00:00:00Z', Value: '', Children: {} },
  },
};

/** A node tree without its v2 indexes (etcd's count v2 writes, which Concord does not keep). */
function withoutIndexes(n: unknown): unknown {
  if (n === null || typeof n !== 'object') return n;
  return Object.fromEntries(Object.entries(n).filter(([k]) => k !== 'CreatedIndex' && k !== 'ModifiedIndex').map(([k, v]) => [k, withoutIndexes(v)]));
}

test('Concord writes the v2 store tree etcd writes for the same membership and cluster version', () => {
  const clusterId = 0x1234n;
  const m = membershipOfV2Store(JSON.stringify({ Root: etcdRoot, CurrentIndex: 3, CurrentVersion: 2 }), clusterId);
  assert.deepEqual(m.list().map((x) => [x.id.toString(16), x.name, x.peerURLs, x.clientURLs, x.isLearner]),
    [['8f02e7a890b0feea', 'default', ['http://127.0.0.1:34549'], ['http://127.0.0.1:49587'], false]]);
  const ours = JSON.parse(v2StoreOfMembership(m, '3.4.0', 12)) as { Root: unknown; CurrentVersion: number };
  assert.deepEqual(withoutIndexes(ours.Root), withoutIndexes(etcdRoot));
  assert.equal(ours.CurrentVersion, 2);
});

test('learners, unpublished members and removed ids survive the v2 store and back', () => {
  const m = new Membership(7n, [
    { id: 0x10n, name: 'a', peerURLs: ['http://127.0.0.1:1'], clientURLs: ['http://127.0.0.1:2'], isLearner: false },
    { id: 0xfeedn, name: '', peerURLs: ['http://127.0.0.1:3'], clientURLs: [], isLearner: true },
  ], [0x99n]);
  const text = v2StoreOfMembership(m, undefined, 40);
  assert.ok(!text.includes('"version"'), 'no /0/version before the cluster version is decided');
  const back = membershipOfSnapshotData(Buffer.from(text), 7n);
  assert.equal(back.toJson(), m.toJson());
  // Concord's own record, which snap files written before this change hold, still reads.
  assert.equal(membershipOfSnapshotData(Buffer.from(m.toJson()), 7n).toJson(), m.toJson());
});
