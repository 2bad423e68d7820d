/**
 * Decodes the records of one segment held in memory, checking the CRC32C chain, the way
 * etcd's wal/decoder.go does, and telling a torn tail (a crash mid-write) from corruption.
 *
 * A torn write is assumed only in the last segment and only when the evidence allows it:
 * the segment ends inside a record, or a record that fails to parse or to match its CRC has
 * a whole sector's worth of its bytes still zero (etcd's isTornEntry). Anything else is
 * corruption and raises WalCorruptError naming the file and the record's byte offset.
 */

import { open, type FileHandle } from 'node:fs/promises';
import { crc32c } from '@node-rs/crc32';
import { decodeWalRecord, type WalRecord } from '../proto/index.js';
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

/** Bytes read from a segment file at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * A window onto a segment: reads ahead in chunks and stops at the first zero length word, so
 * opening a 64 MB preallocated segment reads only the part that holds records. The window
 * is bounded by max(READ_CHUNK_BYTES, one record) bytes.
 */
export class SegmentWindow {
  private constructor(
    private readonly handle: FileHandle | undefined,
    /** File size. */
    readonly size: number,
    public buf: Buffer,
    /** File offset of buf[0]. */
    public base: number,
  ) {}

  static fromBuffer(buf: Buffer): SegmentWindow {
    return new SegmentWindow(undefined, buf.length, buf, 0);
  }

  static async open(path: string): Promise<SegmentWindow> {
    const h = await open(path, 'r');
    const size = (await h.stat()).size;
    return new SegmentWindow(h, size, Buffer.alloc(0), 0);
  }

  /** Makes buf hold [off, min(off + n, size)). */
  async load(off: number, n: number): Promise<void> {
    const end = Math.min(off + n, this.size);
    if (off >= this.base && end <= this.base + this.buf.length) return;
    if (this.handle === undefined) throw new Error('wal: window outside an in-memory segment');
    const len = Math.min(Math.max(end - off, READ_CHUNK_BYTES), this.size - off);
    const buf = len <= this.buf.length ? this.buf.subarray(0, len) : Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.handle.read(buf, done, len - done, off + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    this.buf = buf.subarray(0, done);
    this.base = off;
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }
}

/**
 * Calls `onRecord` for every valid record of the segment in order. Record data handed to
 * `onRecord` is a view into the read window: use or copy it before returning.
 * @param crc the running CRC from the previous segment (0 for the first one read).
 * @param isLast whether this is the newest segment, the only one a torn write may end.
 */
export async function decodeSegment(
  src: Buffer | string,
  file: string,
  isLast: boolean,
  crc: number,
  onRecord: (rec: WalRecord, offset: number) => void,
): Promise<SegmentResult> {
  const win = typeof src === 'string' ? await SegmentWindow.open(src) : SegmentWindow.fromBuffer(src);
  try {
    return await decodeWindow(win, file, isLast, crc, onRecord);
  } finally {
    await win.close();
  }
}

async function decodeWindow(
  win: SegmentWindow,
  file: string,
  isLast: boolean,
  crc: number,
  onRecord: (rec: WalRecord, offset: number) => void,
): Promise<SegmentResult> {
  const size = win.size;
  let off = 0;
  const torn = (reason: string): SegmentResult => {
    if (!isLast) throw new WalCorruptError(file, off, reason);
    return { end: off, crc, torn: `${reason} at offset ${off}` };
  };
  for (;;) {
    if (off === size) return { end: off, crc };
    if (off + FRAME_SIZE_BYTES > size) return torn('partial length word');
    if (off + FRAME_SIZE_BYTES > win.base + win.buf.length) await win.load(off, FRAME_SIZE_BYTES);
    const { recBytes, padBytes, zero } = readFrameSize(win.buf, off - win.base);
    // An all-zero length word is the preallocated, never-written rest of the segment.
    if (zero) return { end: off, crc };
    if (recBytes >= MAX_RECORD_BYTES - padBytes) {
      throw new WalCorruptError(file, off, `record length ${recBytes} over the ${MAX_RECORD_BYTES}-byte limit`);
    }
    const dataEnd = off + FRAME_SIZE_BYTES + recBytes + padBytes;
    if (dataEnd > size) return torn('partial record');
    if (dataEnd > win.base + win.buf.length) await win.load(off, dataEnd - off);
    const buf = win.buf;
    const dataStart = off + FRAME_SIZE_BYTES - win.base;
    const bufEnd = dataEnd - win.base;

    let rec: WalRecord;
    try {
      rec = decodeWalRecord(buf, dataStart, dataStart + recBytes);
    } catch {
      if (isLast && isTornEntry(buf, dataStart, bufEnd, win.base)) return torn('partly written record');
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
        if (isLast && isTornEntry(buf, dataStart, bufEnd, win.base)) return torn('partly written record');
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
function isTornEntry(buf: Buffer, start: number, end: number, base: number): boolean {
  let pos = start;
  while (pos < end) {
    const stop = Math.min(end, pos + (MIN_SECTOR_SIZE - ((base + pos) % MIN_SECTOR_SIZE)));
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
