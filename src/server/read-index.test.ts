// The read-index path: rounds shared by the reads waiting when they start, the applied-index
// wait, the bound on pending reads, and the behaviour on leader changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftError } from '../raft/index.js';
import { isEtcdError, etcdError } from '../errors/index.js';
import { PutRequest, RangeRequest } from '../proto/index.js';
import { AppliedIndexWaiter, LinearizableReads, type LinearizableReadsOptions, type ReadIndexRaft } from './read-index.js';
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

function reads(raft: FakeRaft, maxPendingReads = 100, more: Partial<LinearizableReadsOptions> = {}) {
  return new LinearizableReads({ raft, soleVoter: () => false, maxPendingReads, ...more });
}

const turn = () => new Promise((r) => setImmediate(r));
/** Lets queued microtasks run (a round with none in flight starts once the current task's microtasks run). */
const microtasks = () => new Promise<void>((r) => setImmediate(r));

test('reads that arrive while a round is in flight share the next round; none rides a round older than itself', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = reads(raft);
  const done: string[] = [];
  const first = r.barrier().then(() => done.push('first'));
  await microtasks();
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
  await microtasks();
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
  await microtasks();
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
  assert.equal(raft.rounds.length, 1, 'the three reads started together share one round');
  r.roundDone(raft.rounds[0]!, 10);
  await Promise.all(pending);
  assert.equal(r.pendingReads, 0);
  const again = r.barrier();
  await microtasks();
  r.roundDone(raft.rounds[1]!, 10);
  await again;
});

test('without a leader (and nothing to wait with) a read fails at once with "no leader"', async () => {
  const raft = new FakeRaft();
  raft.leader = 0n;
  await assert.rejects(reads(raft).barrier(), (e: unknown) => isEtcdError(e, 'NoLeader'));
});

test('as etcd 3.4: a read that arrives without a leader waits, and fails with "leader changed" when one is elected, "request timed out" when none is', async () => {
  const raft = new FakeRaft();
  raft.leader = 0n;
  let elect!: () => void;
  const elected = reads(raft, 100, { waitForLeader: () => new Promise<void>((res) => { elect = res; }) }).barrier();
  await turn();
  elect();
  await assert.rejects(elected, (e: unknown) => isEtcdError(e, 'LeaderChanged'));
  const none = reads(raft, 100, { waitForLeader: () => Promise.reject(etcdError('Timeout')) }).barrier();
  await assert.rejects(none, (e: unknown) => isEtcdError(e, 'Timeout'));
  assert.equal(raft.rounds.length, 0, 'no round is asked for without a leader');
});

test('a round raft drops (no leader yet) waits and is asked again; unanswered for the request timeout, its reads fail with "request timed out"', async () => {
  const raft = new FakeRaft();
  raft.dropRounds = true;
  const r = reads(raft, 100, { resendRoundMs: 2, requestTimeoutMs: 40 });
  await assert.rejects(r.barrier(), (e: unknown) => isEtcdError(e, 'Timeout'));
  raft.dropRounds = false;
  raft.applied.advance(10);
  const p = r.barrier();
  await microtasks();
  r.roundDone(raft.rounds[0]!, 10);
  await p;
});

test('a bug in raft is not turned into "no leader": only ProposalDropped is', async () => {
  const raft = new FakeRaft();
  raft.readIndex = () => { throw new TypeError('boom'); };
  await assert.rejects(reads(raft).barrier(), /boom/);
});

test('as etcd 3.4: a new leader fails the round in flight with "leader changed" (losing the leader does not); reads queued behind it get a round of their own; failAll rejects every waiting read', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = reads(raft);
  const p = r.barrier();
  await microtasks();
  r.leaderChanged(0n);
  const behind = r.barrier();
  assert.equal(raft.rounds.length, 1, 'still the first round');
  r.leaderChanged(3n);
  await assert.rejects(p, (e: unknown) => isEtcdError(e, 'LeaderChanged'));
  assert.equal(raft.rounds.length, 2, 'the queued read started a new round');
  r.roundDone(raft.rounds[0]!, 10); // the failed round's late answer is ignored
  r.roundDone(raft.rounds[1]!, 10);
  await behind;
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
  const r = reads(raft, 10, { resendRoundMs: 5 });
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

test('reads started in one task share one round: none waits a round behind the first', async () => {
  const raft = new FakeRaft();
  raft.applied.advance(10);
  const r = reads(raft);
  const all = [r.barrier(), r.barrier(), r.barrier()];
  await microtasks();
  assert.equal(raft.rounds.length, 1);
  r.roundDone(raft.rounds[0]!, 10);
  await Promise.all(all);
  assert.equal(raft.rounds.length, 1, 'no second round was needed');
});

test('a read is servable at once only on the sole voter, leading, with an entry of its term applied up to its commit index', () => {
  const raft = new FakeRaft();
  raft.isLeader = true;
  raft.applied.advance(10);
  let sole = true;
  const r = reads(raft, 100, { soleVoter: () => sole });
  assert.equal(r.readableNow(), true);
  raft.commitIndex = 11;
  assert.equal(r.readableNow(), false, 'a committed entry not yet applied');
  raft.applied.advance(11);
  assert.equal(r.readableNow(), true);
  raft.appliedTerm = 2;
  assert.equal(r.readableNow(), false, 'no entry of its own term applied yet: the commit index may be behind');
  raft.appliedTerm = 3;
  sole = false;
  assert.equal(r.readableNow(), false, 'other voters: a ReadIndex round is needed');
  sole = true;
  raft.isLeader = false;
  assert.equal(r.readableNow(), false, 'a follower');
});
