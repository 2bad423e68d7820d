import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb as pb } from '../proto/index.js';
import { startTestMember } from './test-member.js';
import { parsePeerUrls } from './cluster-service.js';
import { memberId } from './ids.js';

test('peer URLs are checked and sorted as etcd\'s types.NewURLs does', () => {
  assert.deepEqual(parsePeerUrls([' http://b:2 ', 'HTTPS://a:1', 'unix://s:0']), ['http://b:2', 'https://a:1', 'unix://s:0']);
  assert.deepEqual(parsePeerUrls(['http://[::1]:2380']), ['http://[::1]:2380']);
  for (const bad of [[], ['ftp://a:1'], ['http://a'], ['http://a:1/p'], ['a:1'], ['http://[::1]']]) {
    assert.equal(parsePeerUrls(bad), undefined, JSON.stringify(bad));
  }
});

test('through the member: add a learner (etcd\'s id), list it, refuse its promotion, remove it; the header has no revision', async () => {
  const m = await startTestMember();
  try {
    await m.server.publish('t0', []); // started, as etcd's guards count members
    const before = Date.now();
    const added = await m.server.memberAdd(pb.MemberAddRequest.fromPartial({ peerURLs: ['http://127.0.0.1:9001'], isLearner: true }));
    const id = added.member!.ID;
    const candidates = [before, Date.now()].map((t) => memberId(['http://127.0.0.1:9001'], '', new Date(t)));
    assert.ok(candidates.includes(id), 'sha1 of the URLs and the Unix second, without a cluster token');
    assert.equal(added.header!.revision, 0);
    assert.deepEqual(added.members.map((x) => [x.ID, x.isLearner]).sort(), [[id, true], [m.server.memberId, false]].sort());
    assert.deepEqual((await m.server.memberList({})).members.find((x) => x.ID === id)?.isLearner, true);
    await assert.rejects(m.server.memberPromote(pb.MemberPromoteRequest.fromPartial({ ID: id })), { message: 'etcdserver: can only promote a learner member which is in sync with leader' });
    assert.equal(m.server.isLearner(), false);
    assert.equal((await m.server.status()).isLearner, false);
    const removed = await m.server.memberRemove(pb.MemberRemoveRequest.fromPartial({ ID: id }));
    assert.deepEqual(removed.members.map((x) => x.ID), [m.server.memberId]);
    await assert.rejects(m.server.memberRemove(pb.MemberRemoveRequest.fromPartial({ ID: id })), { message: 'etcdserver: member not found' });
  } finally {
    await m.close();
  }
});

test('a member told it was removed stops a second later, with etcd\'s reason', async () => {
  const m = await startTestMember();
  try {
    const keepAlive = setTimeout(() => undefined, 10_000); // the timer behind `removed` does not hold the process
    m.server.removedFromCluster();
    assert.equal((await m.server.removed).message, 'the member has been permanently removed from the cluster');
    clearTimeout(keepAlive);
  } finally {
    await m.close();
  }
});
