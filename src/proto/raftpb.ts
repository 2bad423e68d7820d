/**
 * etcd's raftpb (raft/raftpb/raft.proto) as plain TypeScript interfaces with hand-written codecs.
 *
 * The encoding is byte-identical to gogoproto's generated Marshal: fields in the order the
 * generated code writes them, non-nullable proto2 scalars always emitted (even when zero),
 * non-nullable nested messages always emitted, optional `bytes` only when present
 * (`undefined` here stands for Go's nil). Repeated uint64 are unpacked, as proto2 marshals
 * them; the decoders also accept packed input.
 *
 * Terms, indexes and commit are `number`; node ids and ConfChange ids are `bigint`.
 */
import { Reader, Writer, sizeVarint, sizeVarintBig, sizeBytesField, WIRE_BYTES } from './wire.js';

export type NodeId = bigint;

export enum EntryType {
  EntryNormal = 0,
  EntryConfChange = 1,
  EntryConfChangeV2 = 2,
}

export enum MessageType {
  MsgHup = 0,
  MsgBeat = 1,
  MsgProp = 2,
  MsgApp = 3,
  MsgAppResp = 4,
  MsgVote = 5,
  MsgVoteResp = 6,
  MsgSnap = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResp = 9,
  MsgUnreachable = 10,
  MsgSnapStatus = 11,
  MsgCheckQuorum = 12,
  MsgTransferLeader = 13,
  MsgTimeoutNow = 14,
  MsgReadIndex = 15,
  MsgReadIndexResp = 16,
  MsgPreVote = 17,
  MsgPreVoteResp = 18,
}

export enum ConfChangeType {
  ConfChangeAddNode = 0,
  ConfChangeRemoveNode = 1,
  ConfChangeUpdateNode = 2,
  ConfChangeAddLearnerNode = 3,
}

export enum ConfChangeTransition {
  ConfChangeTransitionAuto = 0,
  ConfChangeTransitionJointImplicit = 1,
  ConfChangeTransitionJointExplicit = 2,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** `undefined` is Go's nil (field omitted); an empty array is emitted as a zero-length field. */
  data?: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

export interface Snapshot {
  data?: Uint8Array;
  metadata: SnapshotMetadata;
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  /**
   * Absent means the empty snapshot. gogoproto always emits this field; the encoder writes an
   * empty Snapshot when it is absent, and the decoder leaves it absent when the wire carries an
   * empty one, so messages other than MsgSnap carry no snapshot object in memory.
   */
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context?: Uint8Array;
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
  /** Used only by etcd to thread a unique request id through. */
  id: bigint;
}

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  context?: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Constructors for the empty values.

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export function emptySnapshot(): Snapshot {
  return { data: undefined, metadata: { confState: emptyConfState(), index: 0, term: 0 } };
}

export function emptyHardState(): HardState {
  return { term: 0, vote: 0n, commit: 0 };
}

/** A Message with every field at its zero value except those given. */
export function newMessage(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    type: fields.type,
    to: fields.to ?? 0n,
    from: fields.from ?? 0n,
    term: fields.term ?? 0,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? [],
    commit: fields.commit ?? 0,
    snapshot: fields.snapshot,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context,
  };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === 0n && hs.commit === 0;
}

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

// ---------------------------------------------------------------------------------------------
// Sizes (exact encoded length of each message, as gogoproto's Size()).

export function sizeEntry(e: Entry): number {
  let n = 3 + sizeVarint(e.type) + sizeVarint(e.term) + sizeVarint(e.index);
  if (e.data !== undefined) n += 1 + sizeBytesField(e.data.length);
  return n;
}

export function sizeHardState(h: HardState): number {
  return 3 + sizeVarint(h.term) + sizeVarintBig(h.vote) + sizeVarint(h.commit);
}

function sizeIds(ids: NodeId[]): number {
  let n = ids.length;
  for (let i = 0; i < ids.length; i++) n += sizeVarintBig(ids[i]);
  return n;
}

export function sizeConfState(c: ConfState): number {
  return sizeIds(c.voters) + sizeIds(c.learners) + sizeIds(c.votersOutgoing) + sizeIds(c.learnersNext) + 2;
}

export function sizeSnapshotMetadata(m: SnapshotMetadata): number {
  return 1 + sizeBytesField(sizeConfState(m.confState)) + 2 + sizeVarint(m.index) + sizeVarint(m.term);
}

/** Encoded size of the empty Snapshot gogoproto writes into every non-snapshot Message. */
const EMPTY_SNAPSHOT_SIZE = 10;

export function sizeSnapshot(s: Snapshot | undefined): number {
  if (s === undefined) return EMPTY_SNAPSHOT_SIZE;
  let n = 1 + sizeBytesField(sizeSnapshotMetadata(s.metadata));
  if (s.data !== undefined) n += 1 + sizeBytesField(s.data.length);
  return n;
}

export function sizeMessage(m: Message): number {
  let n =
    6 +
    sizeVarint(m.type) +
    sizeVarintBig(m.to) +
    sizeVarintBig(m.from) +
    sizeVarint(m.term) +
    sizeVarint(m.logTerm) +
    sizeVarint(m.index);
  const ents = m.entries;
  for (let i = 0; i < ents.length; i++) n += 1 + sizeBytesField(sizeEntry(ents[i]));
  n += 1 + sizeVarint(m.commit);
  n += 1 + sizeBytesField(sizeSnapshot(m.snapshot));
  n += 2; // reject
  n += 1 + sizeVarint(m.rejectHint);
  if (m.context !== undefined) n += 1 + sizeBytesField(m.context.length);
  return n;
}

export function sizeConfChange(c: ConfChange): number {
  let n = 3 + sizeVarintBig(c.id) + sizeVarint(c.type) + sizeVarintBig(c.nodeId);
  if (c.context !== undefined) n += 1 + sizeBytesField(c.context.length);
  return n;
}

export function sizeConfChangeSingle(c: ConfChangeSingle): number {
  return 2 + sizeVarint(c.type) + sizeVarintBig(c.nodeId);
}

export function sizeConfChangeV2(c: ConfChangeV2): number {
  let n = 1 + sizeVarint(c.transition);
  for (const ch of c.changes) n += 1 + sizeBytesField(sizeConfChangeSingle(ch));
  if (c.context !== undefined) n += 1 + sizeBytesField(c.context.length);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writers (field order exactly as raft.pb.go's MarshalTo).

export function writeEntry(w: Writer, e: Entry): void {
  w.byte(0x08);
  w.varint(e.type);
  w.byte(0x10);
  w.varint(e.term);
  w.byte(0x18);
  w.varint(e.index);
  if (e.data !== undefined) {
    w.byte(0x22);
    w.bytes(e.data);
  }
}

export function writeHardState(w: Writer, h: HardState): void {
  w.byte(0x08);
  w.varint(h.term);
  w.byte(0x10);
  w.varintBig(h.vote);
  w.byte(0x18);
  w.varint(h.commit);
}

function writeIds(w: Writer, tag: number, ids: NodeId[]): void {
  for (let i = 0; i < ids.length; i++) {
    w.byte(tag);
    w.varintBig(ids[i]);
  }
}

export function writeConfState(w: Writer, c: ConfState): void {
  writeIds(w, 0x08, c.voters);
  writeIds(w, 0x10, c.learners);
  writeIds(w, 0x18, c.votersOutgoing);
  writeIds(w, 0x20, c.learnersNext);
  w.byte(0x28);
  w.bool(c.autoLeave);
}

export function writeSnapshotMetadata(w: Writer, m: SnapshotMetadata): void {
  w.byte(0x0a);
  w.varint(sizeConfState(m.confState));
  writeConfState(w, m.confState);
  w.byte(0x10);
  w.varint(m.index);
  w.byte(0x18);
  w.varint(m.term);
}

const EMPTY_SNAPSHOT_BYTES = new Uint8Array([0x12, 0x08, 0x0a, 0x02, 0x28, 0x00, 0x10, 0x00, 0x18, 0x00]);

export function writeSnapshot(w: Writer, s: Snapshot | undefined): void {
  if (s === undefined) {
    w.raw(EMPTY_SNAPSHOT_BYTES);
    return;
  }
  if (s.data !== undefined) {
    w.byte(0x0a);
    w.bytes(s.data);
  }
  w.byte(0x12);
  w.varint(sizeSnapshotMetadata(s.metadata));
  writeSnapshotMetadata(w, s.metadata);
}

export function writeMessage(w: Writer, m: Message): void {
  w.byte(0x08);
  w.varint(m.type);
  w.byte(0x10);
  w.varintBig(m.to);
  w.byte(0x18);
  w.varintBig(m.from);
  w.byte(0x20);
  w.varint(m.term);
  w.byte(0x28);
  w.varint(m.logTerm);
  w.byte(0x30);
  w.varint(m.index);
  const ents = m.entries;
  for (let i = 0; i < ents.length; i++) {
    w.byte(0x3a);
    w.varint(sizeEntry(ents[i]));
    writeEntry(w, ents[i]);
  }
  w.byte(0x40);
  w.varint(m.commit);
  w.byte(0x4a);
  w.varint(sizeSnapshot(m.snapshot));
  writeSnapshot(w, m.snapshot);
  w.byte(0x50);
  w.bool(m.reject);
  w.byte(0x58);
  w.varint(m.rejectHint);
  if (m.context !== undefined) {
    w.byte(0x62);
    w.bytes(m.context);
  }
}

export function writeConfChange(w: Writer, c: ConfChange): void {
  w.byte(0x08);
  w.varintBig(c.id);
  w.byte(0x10);
  w.varint(c.type);
  w.byte(0x18);
  w.varintBig(c.nodeId);
  if (c.context !== undefined) {
    w.byte(0x22);
    w.bytes(c.context);
  }
}

export function writeConfChangeSingle(w: Writer, c: ConfChangeSingle): void {
  w.byte(0x08);
  w.varint(c.type);
  w.byte(0x10);
  w.varintBig(c.nodeId);
}

export function writeConfChangeV2(w: Writer, c: ConfChangeV2): void {
  w.byte(0x08);
  w.varint(c.transition);
  for (const ch of c.changes) {
    w.byte(0x12);
    w.varint(sizeConfChangeSingle(ch));
    writeConfChangeSingle(w, ch);
  }
  if (c.context !== undefined) {
    w.byte(0x1a);
    w.bytes(c.context);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoders.

export function encodeEntry(e: Entry): Uint8Array {
  const w = new Writer(sizeEntry(e));
  writeEntry(w, e);
  return w.finish();
}

export function encodeHardState(h: HardState): Uint8Array {
  const w = new Writer(sizeHardState(h));
  writeHardState(w, h);
  return w.finish();
}

export function encodeConfState(c: ConfState): Uint8Array {
  const w = new Writer(sizeConfState(c));
  writeConfState(w, c);
  return w.finish();
}

export function encodeSnapshotMetadata(m: SnapshotMetadata): Uint8Array {
  const w = new Writer(sizeSnapshotMetadata(m));
  writeSnapshotMetadata(w, m);
  return w.finish();
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new Writer(sizeSnapshot(s));
  writeSnapshot(w, s);
  return w.finish();
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(sizeMessage(m));
  writeMessage(w, m);
  return w.finish();
}

export function encodeConfChange(c: ConfChange): Uint8Array {
  const w = new Writer(sizeConfChange(c));
  writeConfChange(w, c);
  return w.finish();
}

export function encodeConfChangeSingle(c: ConfChangeSingle): Uint8Array {
  const w = new Writer(sizeConfChangeSingle(c));
  writeConfChangeSingle(w, c);
  return w.finish();
}

export function encodeConfChangeV2(c: ConfChangeV2): Uint8Array {
  const w = new Writer(sizeConfChangeV2(c));
  writeConfChangeV2(w, c);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Readers. Each reads fields until the reader's end; unknown fields are skipped.

/** `view`: data is a view of the input, not a copy (see decodeEntryView). */
export function readEntry(r: Reader, view = false): Entry {
  const e: Entry = { term: 0, index: 0, type: EntryType.EntryNormal, data: undefined };
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x08: e.type = r.varint(); break;
      case 0x10: e.term = r.varint(); break;
      case 0x18: e.index = r.varint(); break;
      case 0x22: e.data = view ? r.view() : r.bytes(); break;
      default: r.skip(tag & 7);
    }
  }
  return e;
}

export function readHardState(r: Reader): HardState {
  const h = emptyHardState();
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x08: h.term = r.varint(); break;
      case 0x10: h.vote = r.varintBig(); break;
      case 0x18: h.commit = r.varint(); break;
      default: r.skip(tag & 7);
    }
  }
  return h;
}

/** One repeated uint64 field occurrence, unpacked or packed. */
function readIds(r: Reader, wireType: number, into: NodeId[]): void {
  if (wireType === WIRE_BYTES) {
    const [start, stop] = r.sub();
    const inner = new Reader(r.buf, start, stop);
    while (!inner.done()) into.push(inner.varintBig());
  } else {
    into.push(r.varintBig());
  }
}

export function readConfState(r: Reader): ConfState {
  const c = emptyConfState();
  while (!r.done()) {
    const tag = r.tag();
    const field = tag >>> 3;
    const wt = tag & 7;
    switch (field) {
      case 1: readIds(r, wt, c.voters); break;
      case 2: readIds(r, wt, c.learners); break;
      case 3: readIds(r, wt, c.votersOutgoing); break;
      case 4: readIds(r, wt, c.learnersNext); break;
      case 5:
        if (wt === 0) c.autoLeave = r.bool();
        else r.skip(wt);
        break;
      default: r.skip(wt);
    }
  }
  return c;
}

function nested<T>(r: Reader, read: (r: Reader) => T): T {
  const [start, stop] = r.sub();
  return read(new Reader(r.buf, start, stop));
}

export function readSnapshotMetadata(r: Reader): SnapshotMetadata {
  const m: SnapshotMetadata = { confState: emptyConfState(), index: 0, term: 0 };
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x0a: m.confState = nested(r, readConfState); break;
      case 0x10: m.index = r.varint(); break;
      case 0x18: m.term = r.varint(); break;
      default: r.skip(tag & 7);
    }
  }
  return m;
}

export function readSnapshot(r: Reader): Snapshot {
  const s = emptySnapshot();
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x0a: s.data = r.bytes(); break;
      case 0x12: s.metadata = nested(r, readSnapshotMetadata); break;
      default: r.skip(tag & 7);
    }
  }
  return s;
}

/** The bytes [start, stop) of buf are EMPTY_SNAPSHOT_BYTES, the empty Snapshot gogoproto writes. */
function isEmptySnapshotEncoding(buf: Uint8Array, start: number, stop: number): boolean {
  if (stop - start !== EMPTY_SNAPSHOT_BYTES.length) return false;
  for (let i = 0; i < EMPTY_SNAPSHOT_BYTES.length; i++) if (buf[start + i] !== EMPTY_SNAPSHOT_BYTES[i]) return false;
  return true;
}

function isWireEmptySnapshot(s: Snapshot): boolean {
  const m = s.metadata;
  const c = m.confState;
  return (
    s.data === undefined &&
    m.index === 0 &&
    m.term === 0 &&
    c.voters.length === 0 &&
    c.learners.length === 0 &&
    c.votersOutgoing.length === 0 &&
    c.learnersNext.length === 0 &&
    !c.autoLeave
  );
}

export function readMessage(r: Reader): Message {
  const m = newMessage({ type: MessageType.MsgHup });
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x08: m.type = r.varint(); break;
      case 0x10: m.to = r.varintBig(); break;
      case 0x18: m.from = r.varintBig(); break;
      case 0x20: m.term = r.varint(); break;
      case 0x28: m.logTerm = r.varint(); break;
      case 0x30: m.index = r.varint(); break;
      case 0x3a: m.entries.push(nested(r, readEntry)); break;
      case 0x40: m.commit = r.varint(); break;
      case 0x4a: {
        // Every message but MsgSnap carries the empty snapshot, in etcd's encoding and ours:
        // recognized by its bytes, it costs no decode (four objects per heartbeat, otherwise).
        const [start, stop] = r.sub();
        if (isEmptySnapshotEncoding(r.buf, start, stop)) break;
        const s = readSnapshot(new Reader(r.buf, start, stop));
        m.snapshot = isWireEmptySnapshot(s) ? undefined : s;
        break;
      }
      case 0x50: m.reject = r.bool(); break;
      case 0x58: m.rejectHint = r.varint(); break;
      case 0x62: m.context = r.bytes(); break;
      default: r.skip(tag & 7);
    }
  }
  return m;
}

export function readConfChange(r: Reader): ConfChange {
  const c: ConfChange = { type: ConfChangeType.ConfChangeAddNode, nodeId: 0n, context: undefined, id: 0n };
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x08: c.id = r.varintBig(); break;
      case 0x10: c.type = r.varint(); break;
      case 0x18: c.nodeId = r.varintBig(); break;
      case 0x22: c.context = r.bytes(); break;
      default: r.skip(tag & 7);
    }
  }
  return c;
}

export function readConfChangeSingle(r: Reader): ConfChangeSingle {
  const c: ConfChangeSingle = { type: ConfChangeType.ConfChangeAddNode, nodeId: 0n };
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x08: c.type = r.varint(); break;
      case 0x10: c.nodeId = r.varintBig(); break;
      default: r.skip(tag & 7);
    }
  }
  return c;
}

export function readConfChangeV2(r: Reader): ConfChangeV2 {
  const c: ConfChangeV2 = {
    transition: ConfChangeTransition.ConfChangeTransitionAuto,
    changes: [],
    context: undefined,
  };
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x08: c.transition = r.varint(); break;
      case 0x12: c.changes.push(nested(r, readConfChangeSingle)); break;
      case 0x1a: c.context = r.bytes(); break;
      default: r.skip(tag & 7);
    }
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Decoders.

export const decodeEntry = (b: Uint8Array): Entry => readEntry(new Reader(b));
/**
 * An Entry whose data is a view of `b`, not a copy: only for input nobody reuses or mutates
 * while the entry lives (a peer's socket chunks; not the WAL reader's reused windows).
 */
export const decodeEntryView = (b: Uint8Array): Entry => readEntry(new Reader(b), true);
export const decodeHardState = (b: Uint8Array): HardState => readHardState(new Reader(b));
export const decodeConfState = (b: Uint8Array): ConfState => readConfState(new Reader(b));
export const decodeSnapshotMetadata = (b: Uint8Array): SnapshotMetadata => readSnapshotMetadata(new Reader(b));
export const decodeSnapshot = (b: Uint8Array): Snapshot => readSnapshot(new Reader(b));
export const decodeMessage = (b: Uint8Array): Message => readMessage(new Reader(b));
export const decodeConfChange = (b: Uint8Array): ConfChange => readConfChange(new Reader(b));
export const decodeConfChangeSingle = (b: Uint8Array): ConfChangeSingle => readConfChangeSingle(new Reader(b));
export const decodeConfChangeV2 = (b: Uint8Array): ConfChangeV2 => readConfChangeV2(new Reader(b));
