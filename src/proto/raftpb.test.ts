import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  decodeConfChange,
  decodeConfChangeV2,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeConfChangeV2,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  newMessage,
  type Snapshot,
} from './raftpb.js';
import { Reader, Writer, sizeVarint, sizeVarintBig } from './wire.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const enc = new TextEncoder();

test('varints round-trip across 7-bit boundaries and up to 2^53 / 2^64', () => {
  const nums = [0, 1, 127, 128, 16383, 16384, 2 ** 28 - 1, 2 ** 28, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 7, Number.MAX_SAFE_INTEGER];
  for (const n of nums) {
    const w = new Writer(sizeVarint(n));
    w.varint(n);
    const r = new Reader(w.finish());
    assert.equal(r.varint(), n);
    assert.ok(r.done());
  }
  const bigs = [0n, 1n, 300n, 0x8e9e05c52164694dn, (1n << 63n), (1n << 64n) - 1n];
  for (const n of bigs) {
    const w = new Writer(sizeVarintBig(n));
    w.varintBig(n);
    const r = new Reader(w.finish());
    assert.equal(r.varintBig(), n);
  }
  const w = new Writer(10);
  w.varintBig((1n << 64n) - 1n);
  assert.equal(hex(w.finish()), 'ffffffffffffffffff01');
});

test('HardState encodes every field even when zero, in gogoproto order', () => {
  assert.equal(hex(encodeHardState({ term: 1, vote: 2n, commit: 3 })), '080110021803');
  assert.equal(hex(encodeHardState({ term: 0, vote: 0n, commit: 0 })), '080010001800');
  const hs = { term: 7, vote: 0x8e9e05c52164694dn, commit: 123456789 };
  assert.deepEqual(decodeHardState(encodeHardState(hs)), hs);
});

test('Entry writes Type before Term and Index and omits nil Data', () => {
  // Type=1 Term=5 Index=300 Data="ab" (the field order of raft.pb.go: 1, 2, 3, 4).
  const e = { term: 5, index: 300, type: EntryType.EntryNormal, data: enc.encode('ab') };
  assert.equal(hex(encodeEntry(e)), '08001005' + '18ac02' + '22026162');
  assert.equal(hex(encodeEntry({ term: 1, index: 1, type: EntryType.EntryNormal })), '080010011801');
  assert.equal(hex(encodeEntry({ term: 1, index: 1, type: EntryType.EntryNormal, data: new Uint8Array(0) })), '0800100118012200');
  assert.deepEqual(decodeEntry(encodeEntry(e)), e);
  assert.equal(decodeEntry(encodeEntry({ term: 1, index: 1, type: 0 })).data, undefined);
});

test('Message golden bytes: MsgApp with one entry carries an empty snapshot field', () => {
  const m = newMessage({
    type: MessageType.MsgApp,
    to: 2n,
    from: 1n,
    term: 3,
    logTerm: 2,
    index: 10,
    entries: [{ term: 3, index: 11, type: EntryType.EntryNormal, data: enc.encode('x') }],
    commit: 10,
  });
  const want =
    '0803' + '1002' + '1801' + '2003' + '2802' + '300a' +
    '3a09' + '08001003180b220178' +
    '400a' +
    '4a0a' + '1208' + '0a022800' + '1000' + '1800' +
    '5000' + '5800';
  assert.equal(hex(encodeMessage(m)), want);
  const back = decodeMessage(encodeMessage(m));
  assert.deepEqual(back, m);
  assert.equal(back.snapshot, undefined);
});

test('Message: an empty snapshot written another way (no auto_leave) still decodes as absent', () => {
  const m = newMessage({ type: MessageType.MsgHeartbeat, to: 2n, from: 1n, term: 3, commit: 7 });
  const canonical = hex(encodeMessage(m));
  const other = canonical.replace('4a0a' + '1208' + '0a022800' + '1000' + '1800', '4a08' + '1206' + '0a00' + '1000' + '1800');
  assert.notEqual(other, canonical);
  const back = decodeMessage(Uint8Array.from(Buffer.from(other, 'hex')));
  assert.deepEqual(back, m);
  assert.equal(back.snapshot, undefined);
});

test('Message round-trips a snapshot, reject hint, large ids and context', () => {
  const snap: Snapshot = {
    data: enc.encode('state'),
    metadata: {
      confState: { voters: [1n, 2n, 0xffffffffffffffffn], learners: [4n], votersOutgoing: [], learnersNext: [], autoLeave: false },
      index: 1000,
      term: 9,
    },
  };
  const m = newMessage({
    type: MessageType.MsgSnap,
    to: 0x8e9e05c52164694dn,
    from: 0xfd422379fda50e48n,
    term: 9,
    snapshot: snap,
    reject: true,
    rejectHint: 77,
    context: enc.encode('ctx'),
  });
  assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  assert.deepEqual(decodeSnapshot(encodeSnapshot(snap)), snap);
});

test('ConfState writes repeated ids unpacked and always writes auto_leave; decodes packed too', () => {
  const cs = { voters: [1n, 2n], learners: [3n], votersOutgoing: [], learnersNext: [], autoLeave: false };
  assert.equal(hex(encodeConfState(cs)), '0801080210032800');
  assert.deepEqual(decodeConfState(encodeConfState(cs)), cs);
  // Packed form of voters [1, 2]: field 1, wire type 2.
  const packed = decodeConfState(Uint8Array.from([0x0a, 0x02, 0x01, 0x02]));
  assert.deepEqual(packed.voters, [1n, 2n]);
});

test('ConfChange writes ID first (field 1), then Type and NodeID', () => {
  const cc = { type: ConfChangeType.ConfChangeAddNode, nodeId: 2n, id: 0n, context: undefined };
  assert.equal(hex(encodeConfChange(cc)), '080010001802');
  const cc2 = { type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: 5n, id: 99n, context: enc.encode('peer') };
  assert.deepEqual(decodeConfChange(encodeConfChange(cc2)), cc2);
  const v2 = {
    transition: ConfChangeTransition.ConfChangeTransitionAuto,
    changes: [{ type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n }],
    context: undefined,
  };
  assert.equal(hex(encodeConfChangeV2(v2)), '0800' + '1204' + '08011003');
  assert.deepEqual(decodeConfChangeV2(encodeConfChangeV2(v2)), v2);
});

test('decoders skip unknown fields and reject truncated input', () => {
  // HardState with an unknown field 9 (varint) in the middle.
  const withUnknown = Uint8Array.from([0x08, 0x01, 0x48, 0x05, 0x18, 0x03]);
  assert.deepEqual(decodeHardState(withUnknown), { term: 1, vote: 0n, commit: 3 });
  assert.throws(() => decodeEntry(Uint8Array.from([0x22, 0x05, 0x01])));
  assert.throws(() => decodeHardState(Uint8Array.from([0x08, 0x80])));
});
