import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Membership, memberFromJson, memberToJson, attributesToJson, parseMemberAttributesPath, memberAttributesPath } from './membership.js';

test('member JSON keeps 64-bit ids exact and matches etcd field names', () => {
  const m = { id: 0xd4b6b7a5ba1b7e0en, name: '', peerURLs: ['http://127.0.0.1:2380'], clientURLs: [], isLearner: false };
  const json = memberToJson(m);
  assert.equal(json, `{"id":${0xd4b6b7a5ba1b7e0en},"peerURLs":["http://127.0.0.1:2380"]}`);
  assert.deepEqual(memberFromJson(json), m);
});

test('membership round-trips through its JSON record', () => {
  const ms = new Membership(0x48276a8f75b6a87n, [
    { id: 0xfffffffffffffff0n, name: 'a', peerURLs: ['http://x:1'], clientURLs: ['http://x:2'], isLearner: false },
    { id: 5n, name: 'b', peerURLs: ['http://y:1'], clientURLs: [], isLearner: true },
  ]);
  const back = Membership.fromJson(ms.toJson());
  assert.equal(back.clusterId, ms.clusterId);
  assert.deepEqual(back.list(), ms.list());
});

test('attribute publish path and JSON are etcd\'s', () => {
  assert.equal(memberAttributesPath(0x2e1259d415f2a040n), '/0/members/2e1259d415f2a040/attributes');
  assert.equal(parseMemberAttributesPath('/0/members/2e1259d415f2a040/attributes'), 0x2e1259d415f2a040n);
  assert.equal(attributesToJson('e1', ['http://127.0.0.1:2379']), '{"name":"e1","clientURLs":["http://127.0.0.1:2379"]}');
});
