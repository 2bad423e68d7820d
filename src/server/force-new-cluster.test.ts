import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../log/index.js';
import { ConfChangeType, EntryType, decodeConfChange, encodeConfChange, emptySnapshot, type Entry } from '../proto/index.js';
import { memberIds, removeOthersEntries, standaloneLog } from './force-new-cluster.js';

const cc = (index: number, type: ConfChangeType, nodeId: bigint): Entry => ({
  term: 1, index, type: EntryType.EntryConfChange, data: encodeConfChange({ type, nodeId, id: 0n }),
});
const put = (index: number, term = 2): Entry => ({ term, index, type: EntryType.EntryNormal, data: Buffer.from('x') });

test('memberIds follows the snapshot (voters and learners) and the conf changes after it', () => {
  const snap = emptySnapshot();
  snap.metadata.confState.voters = [5n, 1n];
  snap.metadata.confState.learners = [9n];
  const ents = [cc(1, ConfChangeType.ConfChangeAddNode, 3n), cc(2, ConfChangeType.ConfChangeRemoveNode, 5n),
    cc(3, ConfChangeType.ConfChangeAddLearnerNode, 7n), cc(4, ConfChangeType.ConfChangeUpdateNode, 3n), put(5)];
  assert.deepEqual(memberIds(snap, ents), [1n, 3n, 7n, 9n]);
});

test('removeOthersEntries removes every other member; adds self first when missing', () => {
  const rm = removeOthersEntries([1n, 2n, 3n], 2n, 4, 10);
  assert.deepEqual(rm.map((e) => [e.index, e.term]), [[11, 4], [12, 4]]);
  assert.deepEqual(rm.map((e) => decodeConfChange(e.data!)).map((c) => [c.type, c.nodeId]),
    [[ConfChangeType.ConfChangeRemoveNode, 1n], [ConfChangeType.ConfChangeRemoveNode, 3n]]);
  const added = removeOthersEntries([1n], 2n, 1, 0).map((e) => decodeConfChange(e.data!));
  assert.equal(added[0]!.type, ConfChangeType.ConfChangeAddNode);
  assert.equal(added[0]!.nodeId, 2n);
  assert.equal(Buffer.from(added[0]!.context!).toString(), '{"id":2,"peerURLs":["http://localhost:2380"]}');
  assert.equal(added[1]!.nodeId, 1n);
});

test('standaloneLog drops uncommitted entries, appends after the commit and commits everything', () => {
  const lines: string[] = [];
  const log = createLogger({ stream: { write: (s: string) => { lines.push(s); } }, caller: false });
  const ents = [cc(1, ConfChangeType.ConfChangeAddNode, 1n), cc(2, ConfChangeType.ConfChangeAddNode, 2n),
    cc(3, ConfChangeType.ConfChangeAddNode, 3n), put(4), put(5), put(6)];
  const out = standaloneLog(2n, undefined, { term: 2, vote: 1n, commit: 4 }, ents, 3, log);
  assert.deepEqual(out.entries.map((e) => e.index), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(out.appended.map((e) => decodeConfChange(e.data!).nodeId), [1n, 3n]);
  assert.deepEqual(out.hardState, { term: 2, vote: 1n, commit: 6 });
  const line = JSON.parse(lines.find((l) => l.includes('discarding uncommitted WAL entries'))!) as Record<string, unknown>;
  assert.equal(line['entry-index'], 5);
  assert.equal(line['commit-index-from-wal'], 4);
  assert.equal(line['number-of-discarded-entries'], 2);
});

test('standaloneLog keeps entries the backend applied past the WAL\'s lagging commit (its conf changes go after them)', () => {
  const log = createLogger({ stream: { write: () => {} }, caller: false });
  const ents = [cc(1, ConfChangeType.ConfChangeAddNode, 1n), cc(2, ConfChangeType.ConfChangeAddNode, 2n),
    cc(3, ConfChangeType.ConfChangeAddNode, 3n), put(4), put(5), put(6)];
  // The WAL says 4 is committed; the backend applied 5 (a commit-only hard state not yet written).
  const out = standaloneLog(2n, undefined, { term: 2, vote: 1n, commit: 4 }, ents, 5, log);
  assert.deepEqual(out.entries.map((e) => e.index), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(out.entries[4]!.type, EntryType.EntryNormal, 'the applied put at 5 is still in the log');
  assert.deepEqual(out.appended.map((e) => e.index), [6, 7]);
  assert.deepEqual(out.hardState, { term: 2, vote: 1n, commit: 7 });
  // An applied index past the WAL's last entry (a backend from a snapshot) keeps every entry.
  assert.deepEqual(standaloneLog(2n, undefined, { term: 2, vote: 1n, commit: 4 }, ents, 9, log).appended.map((e) => e.index), [7, 8]);
});
