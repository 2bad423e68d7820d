// The read-index path: rounds shared by the reads waiting when they start, the applied-index
// wait, the bound on pending reads, and the behaviour on leader changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftError } from '../raft/index.js';
import { isEtcdError, etcdError } from '../errors/index.js';
import { PutRequest, RangeRequest } from '../proto/index.js';
import { AppliedIndexWaiter, LinearizableReads, type ReadIndexRaft } from './read-index.js';
import { startTestMember } from './test-member.js';

/** A follower's view of raft whose ReadIndex rounds the test answers by hand. */
class FakeRaft implements ReadIndexRaft {
  leader = 2n;
  isLeader = false;
  term = 3;
  commitIndex = 10;
  appliedTerm = 3;
  readonly rounds: Uint8Array[] = [];
  readonly applied = new AppliedIndexWaiter();
  dropRounds = false;
  get appliedIndex(): number { return this.applied.index; }
  readIndex(ctx: Uint8Array): void {
    if (this.dropRounds) throw new RaftError('ProposalDropped');
    this.rounds.push(ctx);
  }
  waitApplied(index: number): Promise<void> { return this.applied.wait(index); }
}

function reads(raft: FakeRaft, maxPendingReads = 100) {
  return new LinearizableReads({ raft, soleVoter: () => false, maxPendingReads, retryRoundMs: 1 });
}

const turn = () => new Promise((r) => setImmediate(r));

test('reads that arrive while a round is in flight share the next round; none rides a round older than itself', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = reads(raft);
  const done: string[] = [];
  const first = r.barrier().then(() => done.push('first'));
  assert.equal(raft.rounds.length, 1);
  const later = [r.barrier(), r.barrier()].map((p, i) => p.then(() => done.push(`later${i}`)));
  assert.equal(raft.rounds.length, 1, 'no second round while one is in flight');
  r.roundDone(raft.rounds[0]!, 10);
  await first;
  await turn();
  assert.deepEqual(done, ['first'], 'the later reads did not ride the first round');
  assert.equal(raft.rounds.length, 2, 'the later reads share one new round');
  r.roundDone(raft.rounds[1]!, 10);
  await Promise.all(later);
  assert.deepEqual(done, ['first', 'later0', 'later1']);
});

test('a read resolves only once the applied index reaches the round\'s index', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = reads(raft);
  let resolved = false;
  const p = r.barrier().then(() => { resolved = true; });
  r.roundDone(raft.rounds[0]!, 12);
  await turn();
  assert.equal(resolved, false);
  raft.applied.advance(11);
  await turn();
  assert.equal(resolved, false);
  raft.applied.advance(12);
  await p;
});

test('an answer for another round\'s ctx is ignored', async () => {
  const raft = new FakeRaft();
  const r = reads(raft);
  let resolved = false;
  const p = r.barrier().then(() => { resolved = true; });
  r.roundDone(Buffer.from('not-ours'), 99);
  await turn();
  assert.equal(resolved, false);
  raft.applied.advance(10);
  r.roundDone(raft.rounds[0]!, 10);
  await p;
});

test('pending reads are bounded: past the bound etcd\'s "too many requests", room again once they finish', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = reads(raft, 3);
  const pending = [r.barrier(), r.barrier(), r.barrier()];
  await assert.rejects(r.barrier(), (e: unknown) => isEtcdError(e, 'RequestTooManyRequests'));
  assert.equal(r.pendingReads, 3);
  r.roundDone(raft.rounds[0]!, 10);
  r.roundDone(raft.rounds[1]!, 10);
  await Promise.all(pending);
  assert.equal(r.pendingReads, 0);
  const again = r.barrier();
  r.roundDone(raft.rounds[2]!, 10);
  await again;
});

test('without a leader a read fails at once with "no leader"; a dropped round fails its reads the same way', async () => {
  const raft = new FakeRaft();
  raft.leader = 0n;
  await assert.rejects(reads(raft).barrier(), (e: unknown) => isEtcdError(e, 'NoLeader'));
  const raft2 = new FakeRaft();
  raft2.dropRounds = true;
  await assert.rejects(reads(raft2).barrier(), (e: unknown) => isEtcdError(e, 'NoLeader'));
});

test('a bug in raft is not turned into "no leader": only ProposalDropped is', async () => {
  const raft = new FakeRaft();
  raft.readIndex = () => { throw new TypeError('boom'); };
  await assert.rejects(reads(raft).barrier(), /boom/);
});

test('a round lost to a leader change is retried, and failAll rejects every waiting read', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = reads(raft);
  const p = r.barrier();
  r.leaderChanged();
  await new Promise((res) => setTimeout(res, 5));
  assert.equal(raft.rounds.length, 2, 'a new round was started');
  r.roundDone(raft.rounds[0]!, 10); // the lost round's late answer is ignored
  r.roundDone(raft.rounds[1]!, 10);
  await p;
  const q = r.barrier();
  r.failAll(etcdError('Stopped'));
  await assert.rejects(q, (e: unknown) => isEtcdError(e, 'Stopped'));
});

test('a lone leader serves linearizable reads from its commit index, seeing every acknowledged write', async () => {
  const m = await startTestMember();
  try {
    const writes = Array.from({ length: 20 }, (_, i) => m.server.put(PutRequest.fromPartial({ key: Buffer.from(`k${i}`), value: Buffer.from('v') })));
    await Promise.all(writes);
    const r = await m.server.range(RangeRequest.fromPartial({ key: Buffer.from('k'), rangeEnd: Buffer.from('l') }));
    assert.equal(r.count, 20);
    assert.equal(r.header?.revision, 21);
  } finally {
    await m.close();
  }
});

test('a round left unanswered (a leader that drops it, a lost message) is asked again with the same context until answered', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = new LinearizableReads({ raft, soleVoter: () => false, maxPendingReads: 10, retryRoundMs: 1, resendRoundMs: 5 });
  const p = r.barrier();
  for (let i = 0; i < 400 && raft.rounds.length < 3; i++) await new Promise((res) => setTimeout(res, 5));
  assert.ok(raft.rounds.length >= 3, `asked ${raft.rounds.length} times`);
  assert.ok(raft.rounds.every((c) => Buffer.compare(c, raft.rounds[0]!) === 0), 'the same round, asked again');
  r.roundDone(raft.rounds[0]!, 10);
  await p;
  const asked = raft.rounds.length;
  await new Promise((res) => setTimeout(res, 30));
  assert.equal(raft.rounds.length, asked, 'an answered round is not asked again');
});
