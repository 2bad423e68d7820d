/**
 * Encodes WAL records into one reusable buffer, so that a save() of many entries becomes a
 * single write. Records are chained by CRC32C exactly as etcd chains them: each record's crc
 * is crc32c(data, previous record's crc), and a crc record carries the running value across
 * a segment boundary.
 */

import { crc32c } from '@node-rs/crc32';
import { FRAME_SIZE_BYTES, RecordType, writeFrameSize } from './frame.js';
import { sizeVarint, writeVarint } from '../proto/index.js';

/** The fields of raftpb.Entry the WAL writes (structural, so any Entry shape fits). */
export interface EntryFields {
  term: number;
  index: number;
  type: number;
  data?: Uint8Array;
}

/** The scratch buffer is kept between batches up to this size; a larger one is dropped. */
const RETAINED_BUFFER_BYTES = 4 * 1024 * 1024;
const INITIAL_BUFFER_BYTES = 64 * 1024;

// walpb.Record field tags.
const TAG_TYPE = 0x08;
const TAG_CRC = 0x10;
const TAG_DATA = 0x1a;
// raftpb.Entry field tags: type = 1, term = 2, index = 3, data = 4.
const TAG_ENTRY_TYPE = 0x08;
const TAG_ENTRY_TERM = 0x10;
const TAG_ENTRY_INDEX = 0x18;
const TAG_ENTRY_DATA = 0x22;

/** The largest record header before the data: type tag+value, crc tag+5, data tag. */
const MAX_HEADER_BEFORE_LEN = 1 + 1 + 1 + 5 + 1;

/** Size of the marshalled raftpb.Entry (data omitted when undefined, as gogoproto omits nil). */
export function entrySize(e: EntryFields): number {
  let n = 3 + sizeVarint(e.type) + sizeVarint(e.term) + sizeVarint(e.index);
  const d = e.data;
  if (d !== undefined) n += 1 + sizeVarint(d.length) + d.length;
  return n;
}

export class RecordEncoder {
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  private len = 0;

  /** @param crc the running CRC32C the next record chains from. */
  constructor(public crc: number) {}

  /** Bytes encoded since the last reset. */
  get length(): number {
    return this.len;
  }

  /** The encoded bytes (a view into the scratch buffer, valid until the next append). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** Starts a new batch, releasing an oversized scratch buffer. */
  reset(): void {
    this.len = 0;
    if (this.buf.length > RETAINED_BUFFER_BYTES) this.buf = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  }

  private ensure(extra: number): void {
    const need = this.len + extra;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /**
   * Reserves room for one record of `dataBytes` data and returns where the caller writes
   * the data: at the offset the largest header would leave, so the CRC can be taken in
   * place. finishRecord() moves it back only if the crc varint turns out shorter (1 time in
   * 16).
   */
  private beginRecord(dataBytes: number): number {
    const lenBytes = sizeVarint(dataBytes);
    this.ensure(FRAME_SIZE_BYTES + MAX_HEADER_BEFORE_LEN + lenBytes + dataBytes + 8);
    return this.len + FRAME_SIZE_BYTES + MAX_HEADER_BEFORE_LEN + lenBytes;
  }

  private finishRecord(type: number, dataBytes: number, dataPos: number): void {
    const buf = this.buf;
    const crc = crc32c(buf.subarray(dataPos, dataPos + dataBytes), this.crc) >>> 0;
    this.crc = crc;
    const start = this.len;
    let p = start + FRAME_SIZE_BYTES;
    buf[p++] = TAG_TYPE;
    p = writeVarint(buf, p, type);
    buf[p++] = TAG_CRC;
    p = writeVarint(buf, p, crc);
    buf[p++] = TAG_DATA;
    p = writeVarint(buf, p, dataBytes);
    if (p !== dataPos) buf.copyWithin(p, dataPos, dataPos + dataBytes);
    this.finishFrame(start, p + dataBytes);
  }

  /** Writes the length word for the record in `[start+8, end)` and zero-pads it. */
  private finishFrame(start: number, end: number): void {
    const recBytes = end - start - FRAME_SIZE_BYTES;
    const pad = writeFrameSize(this.buf, start, recBytes);
    for (let i = 0; i < pad; i++) this.buf[end + i] = 0;
    this.len = end + pad;
  }

  /** A record carrying already-marshalled data (metadata, state, snapshot). */
  appendData(type: number, data: Uint8Array): void {
    const pos = this.beginRecord(data.length);
    this.buf.set(data, pos);
    this.finishRecord(type, data.length, pos);
  }

  /**
   * An entry record, marshalling the entry straight into the batch buffer (no per-entry
   * allocation).
   */
  appendEntry(e: EntryFields): void {
    const size = entrySize(e);
    const dataPos = this.beginRecord(size);
    const buf = this.buf;
    let pos = dataPos;
    buf[pos++] = TAG_ENTRY_TYPE;
    pos = writeVarint(buf, pos, e.type);
    buf[pos++] = TAG_ENTRY_TERM;
    pos = writeVarint(buf, pos, e.term);
    buf[pos++] = TAG_ENTRY_INDEX;
    pos = writeVarint(buf, pos, e.index);
    const d = e.data;
    if (d !== undefined) {
      buf[pos++] = TAG_ENTRY_DATA;
      pos = writeVarint(buf, pos, d.length);
      buf.set(d, pos);
    }
    this.finishRecord(RecordType.entry, size, dataPos);
  }

  /**
   * A crc record: no data, crc = the running value. etcd writes one first in every segment
   * so a reader starting there can pick up the chain.
   */
  appendCrc(): void {
    this.ensure(FRAME_SIZE_BYTES + 1 + 1 + 1 + 5 + 8);
    const start = this.len;
    let p = start + FRAME_SIZE_BYTES;
    this.buf[p++] = TAG_TYPE;
    p = writeVarint(this.buf, p, RecordType.crc);
    this.buf[p++] = TAG_CRC;
    p = writeVarint(this.buf, p, this.crc);
    this.finishFrame(start, p);
  }
}

