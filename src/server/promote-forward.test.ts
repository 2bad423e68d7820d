// The peer API's POST /members/promote/<id> on both sides, over a real HTTP listener on
// 127.0.0.1: the handler's statuses and bodies for etcd's outcomes and for hostile paths, and
// the forwarder's reading of them (final answers end it; others are retried until the timeout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { etcdError, isEtcdError } from '../errors/index.js';
import { nopLogger } from '../log/index.js';
import type { Member as PbMember } from '../proto/index.js';
import { PromoteForwarder, servePromoteRequest, promotePrefix, type PromoteMember } from './promote-forward.js';

const log = nopLogger();
const big = 18_000_000_000_000_000_001n; // past 2^53: must survive JSON both ways
const members: PbMember[] = [
  { ID: big, name: 'a', peerURLs: ['http://127.0.0.1:1'], clientURLs: ['http://127.0.0.1:2'], isLearner: false },
  { ID: 7n, name: '', peerURLs: ['http://127.0.0.1:3'], clientURLs: [], isLearner: true },
];

async function withPeer(promote: PromoteMember, fn: (url: string) => Promise<void>): Promise<void> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    void servePromoteRequest(promote, 0xabcn, log, req, res, path);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function post(url: string, method = 'POST'): Promise<{ status: number; body: string; cluster: string | undefined }> {
  const r = await fetch(url, { method });
  return { status: r.status, body: await r.text(), cluster: r.headers.get('x-etcd-cluster-id') ?? undefined };
}

test('the handler answers etcd\'s statuses: 200 with the member list, 404 not found, 412 not a learner / not in sync, 500 otherwise; 405 for GET; 404 for an id that is not a decimal uint64', async () => {
  const outcomes = new Map<bigint, () => Promise<PbMember[]>>([
    [1n, async () => members],
    [2n, async () => { throw etcdError('MemberNotFound'); }],
    [3n, async () => { throw etcdError('MemberNotLearner'); }],
    [4n, async () => { throw etcdError('LearnerNotReady'); }],
    [5n, async () => { throw etcdError('Timeout'); }],
  ]);
  const seen: bigint[] = [];
  await withPeer((id) => { seen.push(id); return outcomes.get(id)!(); }, async (url) => {
    const ok = await post(`${url}${promotePrefix}1`);
    assert.equal(ok.status, 200);
    assert.equal(ok.cluster, 'abc');
    assert.equal(ok.body, `[{"id":${big},"peerURLs":["http://127.0.0.1:1"],"name":"a","clientURLs":["http://127.0.0.1:2"]},{"id":7,"peerURLs":["http://127.0.0.1:3"],"isLearner":true}]\n`);
    assert.deepEqual(await post(`${url}${promotePrefix}2`), { status: 404, body: 'membership: ID not found\n', cluster: 'abc' });
    assert.deepEqual(await post(`${url}${promotePrefix}3`), { status: 412, body: 'membership: can only promote a learner member\n', cluster: 'abc' });
    assert.deepEqual(await post(`${url}${promotePrefix}4`), { status: 412, body: 'etcdserver: can only promote a learner member which is in sync with leader\n', cluster: 'abc' });
    assert.deepEqual(await post(`${url}${promotePrefix}5`), { status: 500, body: '{"message":"Internal Server Error"}', cluster: 'abc' });
    assert.equal((await post(`${url}${promotePrefix}1`, 'GET')).status, 405);
    for (const bad of ['x1', '-1', '18446744073709551616', '', '1%2F2']) {
      const r = await post(`${url}${promotePrefix}${bad}`);
      assert.equal(r.status, 404, bad);
      assert.equal(r.body, `member ${bad} not found in cluster\n`);
    }
  });
  assert.deepEqual(seen, [1n, 2n, 3n, 4n, 5n], 'hostile ids never reach the server');
});

test('the forwarder returns the leader\'s member list, passes etcd\'s final refusals on, and retries other answers until its timeout', async () => {
  let calls = 0;
  await withPeer(async (id) => {
    calls++;
    if (id === 1n) return members;
    if (id === 2n) throw etcdError('LearnerNotReady');
    if (id === 3n) throw etcdError('MemberNotFound');
    throw etcdError('NoLeader');
  }, async (url) => {
    const fwd = (timeoutMs: number) => new PromoteForwarder({ leaderPeerUrls: () => [url], requestTimeoutMs: timeoutMs, log });
    assert.deepEqual(await fwd(5000).promote(1n), members);
    await assert.rejects(fwd(5000).promote(2n), (e: unknown) => isEtcdError(e, 'LearnerNotReady'));
    await assert.rejects(fwd(5000).promote(3n), (e: unknown) => isEtcdError(e, 'MemberNotFound'));
    calls = 0;
    await assert.rejects(fwd(400).promote(4n), (e: unknown) => isEtcdError(e, 'Timeout'));
    assert.ok(calls >= 2, `a 500 is retried (${calls} calls)`);
  });
  // No leader known: nothing to ask, the request times out.
  await assert.rejects(new PromoteForwarder({ leaderPeerUrls: () => undefined, requestTimeoutMs: 200, log }).promote(1n), (e: unknown) => isEtcdError(e, 'Timeout'));
});
