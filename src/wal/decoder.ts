/**
 * Decodes the records of one segment held in memory, checking the CRC32C chain, the way
 * etcd's wal/decoder.go does, and telling a torn tail (a crash mid-write) from corruption.
 *
 * A torn write is assumed only in the last segment and only when the evidence allows it:
 * the segment ends inside a record, or a record that fails to parse or to match its CRC has
 * a whole sector's worth of its bytes still zero (etcd's isTornEntry). Anything else is
 * corruption and raises WalCorruptError naming the file and the record's byte offset.
 */

import { crc32c } from '@node-rs/crc32';
import { decodeWalRecord, type WalRecord } from '../proto/walpb.js';
import { WalCorruptError } from './errors.js';
import { FRAME_SIZE_BYTES, MAX_RECORD_BYTES, MIN_SECTOR_SIZE, RecordType, readFrameSize } from './frame.js';

const EMPTY = new Uint8Array(0);

export interface SegmentResult {
  /** Offset just past the last valid record: where appending resumes. */
  end: number;
  /** The running CRC after the last valid record. */
  crc: number;
  /** Set when the segment ended in a torn record, cut off at `end`. */
  torn?: string;
}

/**
 * Calls `onRecord` for every valid record of `buf` (one whole segment) in order.
 * @param crc the running CRC from the previous segment (0 for the first one read).
 * @param isLast whether this is the newest segment, the only one a torn write may end.
 */
export function decodeSegment(
  buf: Buffer,
  file: string,
  isLast: boolean,
  crc: number,
  onRecord: (rec: WalRecord, offset: number) => void,
): SegmentResult {
  let off = 0;
  const torn = (reason: string): SegmentResult => {
    if (!isLast) throw new WalCorruptError(file, off, reason);
    return { end: off, crc, torn: `${reason} at offset ${off}` };
  };
  for (;;) {
    if (off === buf.length) return { end: off, crc };
    if (off + FRAME_SIZE_BYTES > buf.length) return torn('partial length word');
    const { recBytes, padBytes, zero } = readFrameSize(buf, off);
    // An all-zero length word is the preallocated, never-written rest of the segment.
    if (zero) return { end: off, crc };
    if (recBytes >= MAX_RECORD_BYTES - padBytes) {
      throw new WalCorruptError(file, off, `record length ${recBytes} over the ${MAX_RECORD_BYTES}-byte limit`);
    }
    const dataStart = off + FRAME_SIZE_BYTES;
    const dataEnd = dataStart + recBytes + padBytes;
    if (dataEnd > buf.length) return torn('partial record');

    let rec: WalRecord;
    try {
      rec = decodeWalRecord(buf, dataStart, dataStart + recBytes);
    } catch {
      if (isLast && isTornEntry(buf, dataStart, dataEnd)) return torn('partly written record');
      throw new WalCorruptError(file, off, 'malformed record');
    }
    if (rec.type === RecordType.crc) {
      // A crc record restates the chain at a segment's start. A reader that began with this
      // segment (crc 0) has nothing to compare with and adopts it.
      if (crc !== 0 && rec.crc !== crc) throw new WalCorruptError(file, off, 'crc record mismatch');
      crc = rec.crc;
    } else {
      const next = crc32c(rec.data ?? EMPTY, crc) >>> 0;
      if (next !== rec.crc) {
        if (isLast && isTornEntry(buf, dataStart, dataEnd)) return torn('partly written record');
        throw new WalCorruptError(file, off, 'crc mismatch');
      }
      crc = next;
    }
    onRecord(rec, off);
    off = dataEnd;
  }
}

/**
 * etcd's isTornEntry: split the record's bytes on sector boundaries (by file offset); if any
 * piece is all zeros, that sector never reached the disk, so the record was torn.
 */
function isTornEntry(buf: Buffer, start: number, end: number): boolean {
  let pos = start;
  while (pos < end) {
    const stop = Math.min(end, pos + (MIN_SECTOR_SIZE - (pos % MIN_SECTOR_SIZE)));
    let allZero = true;
    for (let i = pos; i < stop; i++) {
      if (buf[i] !== 0) {
        allZero = false;
        break;
      }
    }
    if (allZero) return true;
    pos = stop;
  }
  return false;
}
