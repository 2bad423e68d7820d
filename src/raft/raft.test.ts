import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfChangeType, EntryType, MessageType, type NodeId, newMessage } from '../proto/index.js';
import { RaftError } from './errors.js';
import { StateType } from './raft.js';
import { RawNode } from './rawnode.js';
import { parseCommand } from './rafttest/datadriven.js';
import { InteractionEnv } from './rafttest/interaction_env.js';
import { TestNetwork } from './rafttest/network.js';
import { rng } from '../testkit/index.js';
import { MemoryStorage } from './storage.js';

const enc = new TextEncoder();

function cluster(n: number, seed = 1, nodeOpts = {}): TestNetwork {
  const ids: NodeId[] = [];
  for (let i = 1; i <= n; i++) ids.push(BigInt(i));
  return TestNetwork.cluster(ids, rng(seed), nodeOpts);
}

function elect(net: TestNetwork, id: NodeId): void {
  net.stabilize();
  net.node(id).node.campaign();
  net.stabilize();
  assert.equal(net.node(id).node.raft.state, StateType.Leader, `node ${id} should lead`);
}

function newNode(id: NodeId, storage: MemoryStorage, preVote = false): RawNode {
  return new RawNode({
    id, electionTick: 10, heartbeatTick: 1, storage, maxSizePerMsg: 1 << 20, maxInflightMsgs: 256,
    checkQuorum: false, preVote, random: rng(7),
  });
}

test('single voter: entries commit only in the Ready after the one that persisted them', () => {
  const s = new MemoryStorage();
  const rn = newNode(1n, s);
  rn.bootstrap([{ id: 1n }]);
  const persist = (): ReturnType<RawNode['ready']> => {
    const rd = rn.ready();
    if (rd.hardState) s.setHardState(rd.hardState);
    s.append(rd.entries);
    rn.advance(rd);
    return rd;
  };
  persist();
  rn.campaign();
  while (rn.hasReady()) persist();
  assert.equal(rn.raft.state, StateType.Leader);
  rn.propose(enc.encode('a'));
  const rd1 = rn.ready();
  assert.equal(rd1.entries.length, 1);
  assert.equal(rd1.committedEntries.length, 0, 'not committed before persisted');
  // Proposals during the persist ride the next Ready (group commit).
  rn.propose(enc.encode('b'));
  rn.propose(enc.encode('c'));
  s.append(rd1.entries);
  if (rd1.hardState) s.setHardState(rd1.hardState);
  rn.advance(rd1);
  const rd2 = rn.ready();
  assert.deepEqual(rd2.committedEntries.map((e) => new TextDecoder().decode(e.data)), ['a']);
  assert.equal(rd2.entries.length, 2);
  s.append(rd2.entries);
  rn.advance(rd2);
  const rd3 = rn.ready();
  assert.equal(rd3.committedEntries.length, 2);
  rn.advance(rd3);
});

test('a leader steps down on a message with a higher term', () => {
  const net = cluster(3);
  elect(net, 1n);
  const r = net.node(1n).node.raft;
  net.node(1n).node.step(newMessage({ type: MessageType.MsgHeartbeat, from: 2n, to: 1n, term: r.term + 5 }));
  assert.equal(r.state, StateType.Follower);
  assert.equal(r.lead, 2n);
});

test('votes are refused to a candidate whose log is stale', () => {
  const net = cluster(3);
  elect(net, 1n);
  net.isolate(3n);
  net.propose(net.node(1n), 'x');
  net.stabilize();
  net.heal();
  // Node 3 missed 'x': it cannot win, node 1 and 2 refuse it.
  net.node(3n).node.campaign();
  net.stabilize();
  assert.notEqual(net.node(3n).node.raft.state, StateType.Leader);
  const term3 = net.node(3n).node.raft.term;
  const votes = net.node(3n).node.raft.trk.tally();
  assert.ok(votes.granted <= 1, `granted ${votes.granted} at term ${term3}`);
});

test('entries of a previous term commit only through an entry of the current term', () => {
  // Node 1 has [1@1, 2@1, 3@2] (3@2 never committed) and wins term 3.
  const s = new MemoryStorage();
  s.applySnapshot({ data: undefined, metadata: { index: 1, term: 1, confState: { voters: [1n, 2n, 3n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } });
  s.append([{ term: 1, index: 2, type: EntryType.EntryNormal }, { term: 2, index: 3, type: EntryType.EntryNormal }]);
  s.setHardState({ term: 2, vote: 0n, commit: 1 });
  const rn = newNode(1n, s);
  rn.campaign();
  rn.step(newMessage({ type: MessageType.MsgVoteResp, from: 2n, to: 1n, term: 3 }));
  assert.equal(rn.raft.state, StateType.Leader);
  // Follower 2 acknowledges up to 3 (the old-term entry) only.
  rn.step(newMessage({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 3, index: 3 }));
  assert.equal(rn.raft.log.committed, 1, 'old-term entry must not commit by counting');
  // Persist the leader's empty entry 4@3; follower acknowledges it: now 2, 3 and 4 commit.
  const rd = rn.ready();
  s.append(rd.entries);
  rn.advance(rd);
  rn.step(newMessage({ type: MessageType.MsgAppResp, from: 2n, to: 1n, term: 3, index: 4 }));
  assert.equal(rn.raft.log.committed, 4);
});

test('check-quorum: a leader that cannot hear a quorum steps down', () => {
  const net = cluster(3, 2, { checkQuorum: true });
  elect(net, 1n);
  net.isolate(1n);
  const r = net.node(1n).node.raft;
  for (let i = 0; i < 2 * r.electionTimeout + 1 && r.state === StateType.Leader; i++) {
    net.node(1n).node.tick();
    net.stabilize();
  }
  assert.equal(r.state, StateType.Follower);
});

test('pre-vote: a partitioned node that rejoins does not disrupt the leader', () => {
  const net = cluster(3, 3, { preVote: true, checkQuorum: true });
  elect(net, 1n);
  const term = net.node(1n).node.raft.term;
  net.isolate(3n);
  for (let i = 0; i < 100; i++) {
    net.node(3n).node.tick();
    net.stabilize();
  }
  assert.equal(net.node(3n).node.raft.term, term, 'pre-vote keeps the isolated node at its term');
  net.heal();
  for (let i = 0; i < 5; i++) {
    net.tickAll();
    net.stabilize();
  }
  assert.equal(net.node(1n).node.raft.state, StateType.Leader);
  assert.equal(net.node(1n).node.raft.term, term);
  assert.equal(net.node(3n).node.raft.lead, 1n);
});

test('a learner never campaigns and never counts toward commit', () => {
  const net = cluster(2, 4);
  elect(net, 1n);
  net.addEmptyNode(3n);
  net.node(1n).node.proposeConfChange({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: 3n, id: 0n });
  net.stabilize();
  for (let i = 0; i < 3; i++) { net.tickAll(); net.stabilize(); }
  assert.deepEqual(net.node(1n).confState.learners, [3n]);
  assert.equal(net.node(3n).node.raft.isLearner, true);
  // The learner cannot campaign.
  net.node(3n).node.campaign();
  net.stabilize();
  assert.notEqual(net.node(3n).node.raft.state, StateType.Candidate);
  // With voter 2 down, leader + learner are not a quorum.
  net.node(2n).crash();
  const before = net.node(1n).node.raft.log.committed;
  net.propose(net.node(1n), 'needs-2');
  net.stabilize();
  assert.equal(net.node(1n).node.raft.log.committed, before);
  // A learner asked for its vote does grant it (as in etcd-io/raft: the candidate may know of a
  // promotion the learner has not applied yet); only the candidate's configuration makes it count.
  for (let i = 0; i < 30; i++) net.node(3n).node.tick();
  net.node(3n).node.step(newMessage({ type: MessageType.MsgVote, from: 2n, to: 3n, term: 99, index: 1000, logTerm: 99 }));
  const rd = net.node(3n).node.ready();
  assert.ok(rd.messages.some((m) => m.type === MessageType.MsgVoteResp && !m.reject));
});

test('leader transfer hands leadership to the target via MsgTimeoutNow', () => {
  const net = cluster(3, 5);
  elect(net, 1n);
  net.propose(net.node(1n), 'x');
  net.stabilize();
  net.node(1n).node.transferLeader(2n);
  net.stabilize();
  assert.equal(net.node(2n).node.raft.state, StateType.Leader);
  assert.equal(net.node(1n).node.raft.state, StateType.Follower);
});

test('ReadIndex: reads waiting together share one heartbeat round and get the same index', () => {
  const net = cluster(3, 6);
  elect(net, 1n);
  const l = net.node(1n);
  for (let i = 0; i < 5; i++) l.node.readIndex(enc.encode(`r${i}`));
  const rd = l.node.ready();
  const hbs = rd.messages.filter((m) => m.type === MessageType.MsgHeartbeat);
  assert.equal(hbs.length, 2, 'one heartbeat per follower for all five reads');
  net.handleReady(l, rd);
  net.stabilize();
  assert.equal(l.readStates.length, 5);
  assert.ok(l.readStates.every((r) => r.index === l.node.raft.log.committed));
});

test('ReadIndex: a single voter answers at once; a follower read goes through the leader', () => {
  const one = cluster(1, 8);
  elect(one, 1n);
  one.node(1n).node.readIndex(enc.encode('solo'));
  assert.equal(one.node(1n).node.raft.readStates.length, 1);
  const net = cluster(3, 9);
  elect(net, 1n);
  net.node(2n).node.readIndex(enc.encode('via-leader'));
  net.stabilize();
  assert.equal(net.node(2n).readStates.length, 1);
  assert.equal(net.node(2n).readStates[0].index, net.node(1n).node.raft.log.committed);
});

test('ReadIndex under a leader change: a deposed leader never answers, the new one does', () => {
  const net = cluster(3, 10, { checkQuorum: true });
  elect(net, 1n);
  net.isolate(1n);
  net.node(1n).node.readIndex(enc.encode('stale'));
  net.stabilize();
  for (let i = 0; i < 60 && net.node(2n).node.raft.state !== StateType.Leader; i++) {
    net.node(2n).node.tick();
    net.node(3n).node.tick();
    net.stabilize();
  }
  assert.equal(net.node(2n).node.raft.state, StateType.Leader);
  net.propose(net.node(2n), 'newer');
  net.stabilize();
  assert.equal(net.node(1n).readStates.length, 0, 'isolated old leader cannot confirm its leadership');
  net.heal();
  net.tickAll();
  net.stabilize();
  assert.equal(net.node(1n).node.raft.state, StateType.Follower);
  assert.equal(net.node(1n).readStates.length, 0);
  net.node(2n).node.readIndex(enc.encode('fresh'));
  net.stabilize();
  const rs = net.node(2n).readStates;
  assert.equal(rs.length, 1);
  assert.ok(rs[0].index >= net.node(2n).appliedIndex - 0 && rs[0].index === net.node(2n).node.raft.log.committed);
});

test('a follower behind the compacted log is caught up with a snapshot', () => {
  const net = cluster(3, 11);
  elect(net, 1n);
  net.isolate(3n);
  for (let i = 0; i < 50; i++) net.propose(net.node(1n), `v${i}`);
  net.stabilize();
  net.node(1n).snapshotAndCompact(0);
  assert.ok(net.node(1n).storage.firstIndex() > net.node(3n).node.raft.log.lastIndex() + 1);
  net.heal();
  for (let i = 0; i < 5; i++) { net.tickAll(); net.stabilize(); }
  assert.equal(net.node(3n).appliedIndex, net.node(1n).appliedIndex);
  assert.ok(net.node(3n).storage.snapshot().metadata.index > 0, 'restored from a snapshot');
  net.propose(net.node(1n), 'after');
  net.stabilize();
  assert.equal(net.node(3n).appliedData.at(-1), 'after');
  assert.deepEqual(net.violations, []);
});

test('membership: add a learner, promote it, remove the leader (which steps down)', () => {
  const net = cluster(3, 12);
  elect(net, 1n);
  net.addEmptyNode(4n);
  const l = net.node(1n);
  l.node.proposeConfChange({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: 4n, id: 0n });
  // A second change while the first is unapplied commits as an empty entry (as etcd's raft).
  l.node.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 4n, id: 0n });
  net.stabilize();
  assert.deepEqual(l.confState.voters, [1n, 2n, 3n]);
  assert.deepEqual(l.confState.learners, [4n]);
  l.node.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: 4n, id: 0n });
  net.stabilize();
  assert.deepEqual(l.confState.voters, [1n, 2n, 3n, 4n]);
  net.propose(l, 'four');
  net.stabilize();
  assert.equal(net.node(4n).appliedData.at(-1), 'four');
  l.node.proposeConfChange({ type: ConfChangeType.ConfChangeRemoveNode, nodeId: 1n, id: 0n });
  net.stabilize();
  assert.notEqual(l.node.raft.state, StateType.Leader, 'removed leader steps down');
  l.crash();
  for (let i = 0; i < 40 && !net.leader(); i++) { net.tickAll(); net.stabilize(); }
  const nl = net.leader();
  assert.ok(nl && nl.id !== 1n);
  net.propose(nl!, 'without-1');
  net.stabilize();
  assert.equal(net.node(4n).appliedData.at(-1), 'without-1');
  assert.deepEqual(net.violations, []);
});

test('ReadIndex: a new leader whose commit index trails the old one answers no read before its own entry commits', () => {
  // Leader 1 commits "w" at index 4 with 2's ack, then is cut off before 2 learns the commit.
  // 2 wins term 2 with 3's vote and holds commit index 3. A read it answered at 3 could miss "w",
  // which a client already saw acknowledged: the read must wait for 2's term-2 entry (index 5).
  const env = new InteractionEnv();
  const script = `
    add-nodes 3 voters=(1,2,3) index=2
    campaign 1
    stabilize
    propose 1 w
    process-ready 1
    deliver-msgs 2 drop=(3)
    process-ready 2
    deliver-msgs 1
    process-ready 1
    deliver-msgs drop=(2,3)
    campaign 2
    process-ready 2
    deliver-msgs 3 drop=(1)
    process-ready 3
    deliver-msgs 2`;
  const run = (lines: string): void => {
    for (const line of lines.trim().split('\n')) env.run(parseCommand([line.trim()]));
  };
  run(script);
  const [old, fresh] = [env.rawNode(1n).raft, env.rawNode(2n).raft];
  assert.equal(old.log.committed, 4, 'the old leader committed "w"');
  assert.equal(fresh.state, StateType.Leader);
  assert.equal(fresh.log.committed, 3, "the new leader's commit index trails");
  run(`
    read-index 2 r1
    process-ready 2`);
  assert.equal(env.readStatesOf(2n).length, 0, 'no read before an entry of the new term commits');
  run('stabilize 2 3');
  const dec = new TextDecoder();
  const reads = env.readStatesOf(2n);
  assert.equal(reads.length, 1, 'the read is answered once the leader committed in its term');
  assert.equal(dec.decode(reads[0].requestCtx), 'r1');
  assert.ok(reads[0].index >= 4, `read index ${reads[0].index} misses the write committed at 4 by the old leader`);
});

test('maxUncommittedEntriesSize: the leader drops proposals past the bound until entries apply', () => {
  const s = new MemoryStorage();
  const rn = new RawNode({
    id: 1n, electionTick: 10, heartbeatTick: 1, storage: s, maxSizePerMsg: 1 << 20, maxInflightMsgs: 256,
    checkQuorum: false, preVote: false, random: rng(3), maxUncommittedEntriesSize: 10,
  });
  rn.bootstrap([{ id: 1n }]);
  const drain = (): void => {
    while (rn.hasReady()) {
      const rd = rn.ready();
      if (rd.hardState) s.setHardState(rd.hardState);
      s.append(rd.entries);
      rn.advance(rd);
    }
  };
  drain();
  rn.campaign();
  drain();
  assert.equal(rn.raft.state, StateType.Leader);
  // With nothing uncommitted any size is admitted (so a large entry can make progress).
  rn.propose(enc.encode('0123456789abcdef'));
  assert.throws(() => rn.propose(enc.encode('x')), (e: unknown) => e instanceof RaftError && e.code === 'ProposalDropped');
  try {
    rn.proposeBatch([enc.encode('y')]);
    assert.fail('expected a drop');
  } catch (e) {
    assert.ok(e instanceof RaftError);
    assert.equal(e.message, 'raft proposal dropped');
    assert.equal(e.dropReason, 'uncommitted-bound');
  }
  // Empty entries (as the leave-joint conf change) are never dropped by the bound.
  rn.propose(new Uint8Array(0));
  drain();
  rn.propose(enc.encode('after apply'));
  drain();
  const ents = s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER).map((e) => new TextDecoder().decode(e.data));
  assert.deepEqual(ents.slice(-3), ['0123456789abcdef', '', 'after apply']);
});

test('a proposal without a leader is dropped with reason no-leader', () => {
  const net = cluster(3, 5);
  try {
    net.node(2n).node.propose(enc.encode('x'));
    assert.fail('expected a drop');
  } catch (e) {
    assert.ok(e instanceof RaftError);
    assert.equal(e.dropReason, 'no-leader');
  }
});

test('a follower forwards proposals made back to back as one MsgProp; the leader appends them all', () => {
  const net = cluster(3, 11);
  elect(net, 1n);
  const f = net.node(2n).node;
  const before = net.node(1n).node.raft.log.lastIndex();
  f.propose(enc.encode('a'));
  f.propose(enc.encode('b'));
  f.proposeBatch([enc.encode('c'), enc.encode('d')]);
  const props = f.raft.msgs.filter((m) => m.type === MessageType.MsgProp);
  assert.equal(props.length, 1);
  assert.equal(props[0]!.to, 1n);
  assert.deepEqual(props[0]!.entries.map((e) => new TextDecoder().decode(e.data)), ['a', 'b', 'c', 'd']);
  // Something sent in between (a read) keeps the order: the next proposal is a new message.
  f.readIndex(enc.encode('r'));
  f.propose(enc.encode('e'));
  assert.deepEqual(f.raft.msgs.map((m) => MessageType[m.type]), ['MsgProp', 'MsgReadIndex', 'MsgProp']);
  net.stabilize();
  const l = net.node(1n).node.raft.log;
  const appended = l.entriesFrom(before + 1, Infinity).filter((e) => e.data !== undefined && e.data.length > 0);
  assert.deepEqual(appended.map((e) => new TextDecoder().decode(e.data)), ['a', 'b', 'c', 'd', 'e']);
});

test('a follower merges forwarded proposals only up to maxSizePerMsg of data: a burst leaves as several bounded MsgProps', () => {
  const net = cluster(3, 12, { maxSizePerMsg: 100 });
  elect(net, 1n);
  const f = net.node(2n).node;
  const before = net.node(1n).node.raft.log.lastIndex();
  const sixty = (c: string) => enc.encode(c.repeat(60));
  f.propose(sixty('a'));
  f.propose(sixty('b')); // 120 bytes with a: a new message
  f.propose(enc.encode('c'.repeat(40))); // 100 with b: joins it
  f.propose(enc.encode('d')); // 101: a new message
  const props = f.raft.msgs.filter((m) => m.type === MessageType.MsgProp);
  assert.deepEqual(props.map((m) => m.entries.map((e) => new TextDecoder().decode(e.data)[0]).join('')), ['a', 'bc', 'd']);
  net.stabilize();
  const l = net.node(1n).node.raft.log;
  const appended = l.entriesFrom(before + 1, Infinity).filter((e) => e.data !== undefined && e.data.length > 0);
  assert.deepEqual(appended.map((e) => new TextDecoder().decode(e.data)[0]), ['a', 'b', 'c', 'd']);
});
