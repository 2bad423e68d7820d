// The Ready loop (RaftNode), driven in-process over the in-memory WAL and network: what it
// persists, when it applies, that every member applies the same bytes in the same order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../raft/index.js';
import { ConfChangeType, EntryType, encodeConfChange, type Entry, type NodeId, type Snapshot } from '../proto/index.js';
import { nopLogger } from '../log/index.js';
import { RaftNode } from './raft-node.js';
import { MemoryNetwork, MemorySnapshotter, MemoryWal, readBackMemory } from './memory-ports.js';
import type { TransportPort } from './ports.js';

interface TestMember {
  raft: RaftNode;
  wal: MemoryWal;
  snapshotter: MemorySnapshotter;
  storage: MemoryStorage;
  applied: Entry[];
  restored: Snapshot[];
  readStates: Array<{ ctx: string; index: number }>;
}

/** A member whose log starts with AddNode conf changes for `ids` (as a bootstrap WAL holds). */
function member(id: NodeId, ids: NodeId[], transport: TransportPort, seed = 1): TestMember {
  const storage = new MemoryStorage();
  const boot: Entry[] = ids.map((n, i) => ({
    term: 1, index: i + 1, type: EntryType.EntryConfChange,
    data: encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: n, id: 0n }),
  }));
  storage.setHardState({ term: 1, vote: 0n, commit: boot.length });
  storage.append(boot);
  const wal = new MemoryWal();
  const snapshotter = new MemorySnapshotter();
  const applied: Entry[] = [];
  const restored: Snapshot[] = [];
  const readStates: TestMember['readStates'] = [];
  let r = seed;
  const raft = new RaftNode({
    id, storage, applied: 0, electionTick: 10, heartbeatTick: 1,
    random: () => ((r = (r * 48271) % 2147483647) / 2147483647),
    wal, snapshotter, transport,
    applier: {
      apply: (e) => applied.push(e),
      applyConfChange: (e, cc, toRaft) => { toRaft(cc); applied.push(e); },
      restore: async (snap) => { restored.push(snap); },
    },
    events: { readState: (ctx, index) => readStates.push({ ctx: Buffer.from(ctx).toString(), index }) },
    log: nopLogger(),
  });
  return { raft, wal, snapshotter, storage, applied, restored, readStates };
}

const nowhere: TransportPort = { send: () => assert.fail('a lone member sends nothing'), sendSnapshot: () => assert.fail('no snapshot') };

async function settle(...ms: TestMember[]): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    await Promise.all(ms.map((m) => m.raft.drained()));
  }
}

/** Three members over one in-memory network, once exactly one leads and all know it. */
async function threeMembers(seed: number, net = new MemoryNetwork()): Promise<{ ms: TestMember[]; leader: TestMember }> {
  const ids = [1n, 2n, 3n];
  const ms = ids.map((id, i) => member(id, ids, net.transport(id), i + seed));
  ms.forEach((m, i) => net.join(ids[i]!, m.raft));
  for (const m of ms) m.raft.start();
  await settle(...ms);
  await until(() => ms.some((m) => m.raft.isLeader), () => ms.forEach((m) => m.raft.tick()), 'a leader');
  const leaders = ms.filter((m) => m.raft.isLeader);
  assert.equal(leaders.length, 1, 'one leader');
  const leader = leaders[0]!;
  await until(() => ms.every((m) => m.raft.leader === leader.raft.id), () => leader.raft.tick(), 'everyone knows the leader');
  return { ms, leader };
}

/** Waits until every member applied the leader's empty entry of its term; returns that index. */
async function quiet(ms: TestMember[], leader: TestMember): Promise<number> {
  await until(() => leader.raft.appliedTerm === leader.raft.term && ms.every((m) => m.raft.appliedIndex === leader.raft.commitIndex),
    () => leader.raft.tick(), 'every member applied the leader\'s first entry');
  return leader.raft.commitIndex;
}

/** A lone leader whose WAL holds back the save of `proposal` (proposed, not yet durable). */
async function leaderWithSaveInFlight(proposal: Uint8Array): Promise<TestMember> {
  const m = member(1n, [1n], nowhere);
  m.raft.start();
  await settle(m);
  m.raft.campaignAsSoleVoter();
  await until(() => m.raft.isLeader && m.raft.appliedIndex === 2, () => undefined, 'leader applied its empty entry');
  m.wal.hold();
  m.raft.propose(proposal);
  await until(() => m.wal.pending > 0, () => undefined, 'the save is in flight');
  return m;
}

async function until(cond: () => boolean, step: () => void, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    step();
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}

test('a lone member replays its log, campaigns, and applies its proposals in index order from the WAL\'s bytes', async () => {
  const m = member(1n, [1n], nowhere);
  m.raft.start();
  await settle(m);
  assert.deepEqual(m.applied.map((e) => e.index), [1], 'the bootstrap conf change is applied on replay');
  assert.deepEqual(m.raft.voters(), [1n]);
  m.raft.campaignAsSoleVoter();
  await until(() => m.raft.isLeader && m.raft.appliedTerm === m.raft.term, () => undefined, 'leader with an applied entry of its term');
  assert.equal(m.raft.leader, 1n);
  for (let i = 0; i < 20; i++) m.raft.propose(Buffer.from(`p${i}`));
  await until(() => m.applied.length === 22, () => undefined, 'every proposal applied');
  const normal = m.applied.filter((e) => e.data && e.data.length > 0 && e.type === EntryType.EntryNormal);
  assert.deepEqual(normal.map((e) => Buffer.from(e.data!).toString()), Array.from({ length: 20 }, (_, i) => `p${i}`));
  assert.deepEqual(m.applied.map((e) => e.index), Array.from({ length: 22 }, (_, i) => i + 1));
  assert.equal(m.raft.appliedIndex, 22);
  assert.equal(m.raft.commitIndex, 22);
  // What was applied is what the WAL holds, byte for byte.
  for (const e of normal) assert.deepEqual(Buffer.from(m.wal.entries.find((w) => w.index === e.index)!.data!), Buffer.from(e.data!));
  assert.ok(m.wal.saves < 22, `proposals share WAL saves (group commit): ${m.wal.saves} saves`);
  await m.raft.stop();
});

test('an entry is applied only once the WAL holds it', async () => {
  const m = await leaderWithSaveInFlight(Buffer.from('x'));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(m.raft.appliedIndex, 2, 'nothing applied before the save completes');
  assert.ok(!m.wal.entries.some((e) => e.index === 3), 'entry 3 is not durable yet');
  m.wal.release();
  await until(() => m.raft.appliedIndex === 3, () => undefined, 'applied after the save');
  assert.equal(Buffer.from(m.applied[2]!.data!).toString(), 'x');
  await m.raft.stop();
});

test('three members over the in-memory network elect one leader and apply the same entries in the same order', async () => {
  const { ms, leader } = await threeMembers(7);
  for (let i = 0; i < 30; i++) leader.raft.propose(Buffer.from(`w${i}`));
  const last = () => leader.raft.commitIndex;
  await until(() => leader.raft.commitIndex >= 3 + 30 && ms.every((m) => m.raft.appliedIndex === last()), () => leader.raft.tick(), 'all applied');
  const transcript = (m: TestMember) => m.applied.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data ?? []).toString('hex')}`);
  assert.deepEqual(transcript(ms[1]!), transcript(ms[0]!));
  assert.deepEqual(transcript(ms[2]!), transcript(ms[0]!));
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('a Ready of many committed entries is applied over several event-loop turns, at most 32 in each', async () => {
  const m = await leaderWithSaveInFlight(Buffer.from('p0'));
  for (let i = 1; i < 100; i++) m.raft.propose(Buffer.from(`p${i}`));
  m.wal.release();
  // Sample the applied count once per turn: other work (timers, I/O, this loop) runs between the chunks.
  const seen: number[] = [];
  await until(() => m.raft.appliedIndex === 102, () => seen.push(m.raft.appliedIndex), 'every proposal applied');
  seen.push(m.raft.appliedIndex);
  const steps = seen.slice(1).map((x, i) => x - seen[i]!);
  assert.ok(Math.max(...steps) <= 32, `applied per turn: ${steps.filter((s) => s > 0).join(', ')}`);
  assert.deepEqual(m.applied.map((e) => e.index), Array.from({ length: 102 }, (_, i) => i + 1), 'in index order, each once');
  await m.raft.stop();
});

test('followers write their WAL before the loop goes on (saveNow); a leader does for a one-entry Ready, and saves a bigger one in the background', async () => {
  const { ms, leader } = await threeMembers(5);
  const followers = ms.filter((m) => m !== leader);
  const before = await quiet(ms, leader);
  const followerSaves = followers.map((f) => f.wal.blockingSaves);
  // One proposal: a Ready of one entry, written at once on the leader's thread.
  let leaderEntries = leader.wal.blockingEntries;
  let leaderPooled = leader.wal.saves - leader.wal.blockingSaves;
  leader.raft.propose(Buffer.from('one'));
  await until(() => ms.every((m) => m.raft.appliedIndex === before + 1), () => undefined, 'one applied');
  assert.equal(leader.wal.blockingEntries - leaderEntries, 1, 'the leader wrote its one entry at once');
  assert.equal(leader.wal.saves - leader.wal.blockingSaves, leaderPooled, 'nothing went to the background');
  // Ten proposals in one turn: one Ready of ten entries, saved in the background.
  leaderEntries = leader.wal.blockingEntries;
  leaderPooled = leader.wal.saves - leader.wal.blockingSaves;
  for (let i = 0; i < 10; i++) leader.raft.propose(Buffer.from(`s${i}`));
  await until(() => ms.every((m) => m.raft.appliedIndex === before + 11), () => undefined, 'all applied');
  assert.equal(leader.wal.blockingEntries, leaderEntries, 'no entry of the big Ready was written at once');
  assert.equal(leader.wal.saves - leader.wal.blockingSaves, leaderPooled + 1, 'the big Ready went to the background');
  followers.forEach((f, i) => assert.ok(f.wal.blockingSaves > followerSaves[i]!, 'a follower saved at once'));
  const commit = leader.raft.commitIndex;
  assert.ok(followers.every((f) => f.wal.entries.some((e) => e.index === commit)), 'the followers\' WALs hold the last commit');
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('a leader whose saveNow sync runs late (past the loop budget) goes on serving, commits through the followers, and applies once its own sync is done', async () => {
  const { ms, leader } = await threeMembers(19);
  const followers = ms.filter((m) => m !== leader);
  const before = await quiet(ms, leader);
  leader.wal.syncsLate = true;
  leader.raft.propose(Buffer.from('late-1'));
  await until(() => leader.wal.lateSaves === 1, () => undefined, 'the leader started its write on the loop');
  // The loop is not held: more proposals are taken (and saved behind the late one) meanwhile.
  leader.raft.propose(Buffer.from('late-2'));
  await until(() => followers.every((f) => f.raft.appliedIndex === before + 2), () => undefined, 'followers commit and apply both');
  assert.equal(leader.raft.appliedIndex, before, 'the leader applies nothing its own WAL has not synced');
  assert.ok(leader.wal.pending >= 1);
  leader.wal.syncsLate = false;
  leader.wal.release();
  await until(() => leader.raft.appliedIndex === before + 2, () => undefined, 'the leader applies once its sync is done');
  const data = leader.applied.slice(-2).map((e) => Buffer.from(e.data!).toString());
  assert.deepEqual(data, ['late-1', 'late-2'], 'each once, in order');
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('a leader whose own WAL write is slow still tells followers of the commit their acknowledgements made', async () => {
  const { ms, leader } = await threeMembers(11);
  const followers = ms.filter((m) => m !== leader);
  const before = await quiet(ms, leader);
  leader.wal.hold();
  leader.raft.propose(Buffer.from('slow-disk'));
  // Both followers persist and acknowledge: a quorum without the leader's disk. They commit
  // and apply while the leader's own save is still pending (etcd's leader writes in parallel).
  await until(() => followers.every((f) => f.raft.appliedIndex === before + 1), () => undefined, 'followers apply before the leader\'s save completes');
  assert.equal(leader.wal.pending > 0, true, 'the leader\'s save is still in flight');
  assert.equal(leader.raft.appliedIndex, before, 'the leader applies only what its own WAL holds');
  for (const f of followers) assert.equal(Buffer.from(f.applied[f.applied.length - 1]!.data!).toString(), 'slow-disk');
  leader.wal.release();
  await until(() => leader.raft.appliedIndex === before + 1, () => undefined, 'the leader applies after its save');
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('a follower whose WAL write is slow acknowledges nothing until it is durable', async () => {
  const { ms, leader } = await threeMembers(13);
  const [slow, other] = ms.filter((m) => m !== leader) as [TestMember, TestMember];
  const before = await quiet(ms, leader);
  slow.wal.hold();
  other.wal.hold();
  leader.raft.propose(Buffer.from('held'));
  await until(() => slow.wal.pending > 0 && other.wal.pending > 0, () => undefined, 'both followers are saving');
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.equal(leader.raft.commitIndex, before, 'no commit on acknowledgements of unsaved entries');
  other.wal.release();
  await until(() => ms.every((m) => m === slow || m.raft.appliedIndex === before + 1), () => undefined, 'committed once one follower is durable');
  slow.wal.release();
  await until(() => slow.raft.appliedIndex === before + 1, () => leader.raft.tick(), 'the slow follower catches up');
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('a follower forwards proposals and ReadIndex requests while its own WAL write is in flight', async () => {
  const { ms, leader } = await threeMembers(17);
  const [busy] = ms.filter((m) => m !== leader) as [TestMember, TestMember];
  const before = await quiet(ms, leader);
  busy.wal.hold();
  leader.raft.propose(Buffer.from('first'));
  await until(() => busy.wal.pending > 0, () => undefined, 'the follower is saving the first entry');
  busy.raft.propose(Buffer.from('forwarded'));
  busy.raft.readIndex(Buffer.from('r-busy'));
  // The leader and the other follower commit both entries; the busy follower's request and
  // read reached the leader and came back without waiting for its write.
  await until(() => leader.raft.appliedIndex === before + 2 && busy.readStates.some((r) => r.ctx === 'r-busy'),
    () => undefined, 'the forwarded proposal is applied on the leader and the read answered');
  assert.ok(busy.wal.pending > 0, 'the follower\'s write is still in flight');
  assert.equal(Buffer.from(leader.applied[leader.applied.length - 1]!.data!).toString(), 'forwarded');
  assert.equal(busy.raft.appliedIndex, before, 'the busy follower applies only what its WAL holds');
  busy.wal.release();
  await until(() => busy.raft.appliedIndex === before + 2, () => leader.raft.tick(), 'the busy follower catches up');
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('a follower\'s ReadIndex round is answered with an index covering every committed write', async () => {
  const { ms, leader } = await threeMembers(3);
  for (let i = 0; i < 5; i++) leader.raft.propose(Buffer.from(`w${i}`));
  await until(() => leader.raft.appliedIndex >= 3 + 5, () => leader.raft.tick(), 'writes applied on the leader');
  const committed = leader.raft.commitIndex;
  const follower = ms.find((m) => !m.raft.isLeader)!;
  follower.raft.readIndex(Buffer.from('r1'));
  await until(() => follower.readStates.length > 0, () => leader.raft.tick(), 'the read state');
  assert.equal(follower.readStates[0]!.ctx, 'r1');
  assert.ok(follower.readStates[0]!.index >= committed, `read index ${follower.readStates[0]!.index} >= ${committed}`);
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('exclusive tasks run between Readies, never during a WAL save', async () => {
  const m = await leaderWithSaveInFlight(Buffer.from('a'));
  let ranDuringSave = false;
  const task = m.raft.exclusive(async () => { ranDuringSave = m.wal.pending > 0; });
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  m.wal.release();
  await task;
  assert.equal(ranDuringSave, false);
  await m.raft.stop();
});

test('a follower behind the leader\'s compacted log installs its snapshot: persisted, restored, then the entries after it', async () => {
  const net = new MemoryNetwork();
  const { ms, leader } = await threeMembers(11, net);
  const lagging = ms.find((m) => m !== leader)!;
  for (const m of ms) if (m !== lagging) net.partition(m.raft.id, lagging.raft.id);
  for (let i = 0; i < 20; i++) leader.raft.propose(Buffer.from(`w${i}`));
  await until(() => leader.raft.appliedIndex >= 3 + 20, () => leader.raft.tick(), 'writes applied without the lagging member');
  const snap = await leader.raft.exclusive(() => leader.raft.snapshot(Buffer.from('state'), 0));
  assert.ok(leader.storage.firstIndex() > lagging.raft.appliedIndex + 1, 'the entries the lagging member needs are compacted away');
  net.heal();
  await until(() => lagging.restored.length > 0, () => leader.raft.tick(), 'the snapshot installed');
  assert.equal(lagging.restored[0]!.metadata.index, snap.metadata.index);
  assert.equal(Buffer.from(lagging.restored[0]!.data!).toString(), 'state');
  leader.raft.propose(Buffer.from('after'));
  await until(() => lagging.applied.some((e) => Buffer.from(e.data ?? []).toString() === 'after'), () => leader.raft.tick(), 'an entry after the snapshot applied');
  // Nothing at or below the snapshot was applied from entries after the restore: applying resumed right after it.
  const afterRestore = lagging.applied.filter((e) => e.index > snap.metadata.index);
  assert.equal(afterRestore[0]!.index, snap.metadata.index + 1);
  // The disk holds it as a restart reads it back: the snapshot, then the WAL after it.
  const back = readBackMemory(lagging.wal, lagging.snapshotter);
  assert.equal(back.snapshot?.metadata.index, snap.metadata.index);
  assert.equal(back.storage.lastIndex(), lagging.raft.appliedIndex);
  await Promise.all(ms.map((m) => m.raft.stop()));
});

test('a crash loses the WAL writes not yet durable; a torn write keeps a prefix, and the restart reads back only what is whole', () => {
  const wal = new MemoryWal();
  const snapshotter = new MemorySnapshotter();
  const e = (index: number, term = 1): Entry => ({ index, term, type: EntryType.EntryNormal, data: Buffer.from(`e${index}`) });
  void wal.save({ term: 1, vote: 1n, commit: 2 }, [e(1), e(2)], true);
  wal.hold();
  void wal.save({ term: 1, vote: 1n, commit: 4 }, [e(3), e(4)], true);
  void wal.save({ term: 2, vote: 1n, commit: 5 }, [e(5, 2)], true);
  assert.equal(wal.pendingRecords, 5, 'two entries and a hard state, then one entry and a hard state');
  wal.crash(1);
  assert.equal(wal.pending, 0);
  assert.deepEqual(wal.entries.map((x) => x.index), [1, 2, 3], 'only the first record of the torn write survived');
  assert.equal(wal.hardState?.commit, 2, 'the hard states were lost');
  const back = readBackMemory(wal, snapshotter);
  assert.equal(back.storage.lastIndex(), 3);
  assert.equal(back.storage.initialState().hardState.commit, 2);
  // A snapshot counts only once the durable hard state commits it.
  const snap: Snapshot = { data: Buffer.from('s'), metadata: { index: 3, term: 1, confState: { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } };
  void snapshotter.save(snap);
  void wal.saveSnapshot({ index: 3, term: 1 });
  wal.completeNext();
  assert.equal(readBackMemory(wal, snapshotter).snapshot, undefined, 'commit 2 < snapshot 3');
  void wal.save({ term: 1, vote: 1n, commit: 3 }, [], true);
  wal.completeNext();
  assert.equal(readBackMemory(wal, snapshotter).snapshot?.metadata.index, 3);
});
