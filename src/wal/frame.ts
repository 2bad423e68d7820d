/**
 * Record framing, as etcd's wal/encoder.go and decoder.go do it: each record is an 8-byte
 * little-endian length word followed by the marshalled walpb.Record and zero padding up to
 * a multiple of 8 bytes. When there is padding, the word's top byte is 0x80|padBytes, so a
 * reader knows how much to skip. Keeping every length word 8-aligned means it never
 * straddles a sector and so is never torn on its own.
 */

/** Record types (walpb.Record.type). */
export const RecordType = {
  metadata: 1,
  entry: 2,
  state: 3,
  crc: 4,
  snapshot: 5,
} as const;

export const FRAME_SIZE_BYTES = 8;

/** etcd refuses records this large or larger (raft messages are at most a few MiB). */
export const MAX_RECORD_BYTES = 10 * 1024 * 1024;

/** Sector size etcd assumes when telling a torn write from corruption. */
export const MIN_SECTOR_SIZE = 512;

export function padBytesFor(dataBytes: number): number {
  return (8 - (dataBytes % 8)) % 8;
}

/** Writes the length word for a record of `dataBytes` at `buf[pos]`; returns the padding. */
export function writeFrameSize(buf: Buffer, pos: number, dataBytes: number): number {
  const pad = padBytesFor(dataBytes);
  // The low 56 bits hold the size; records are < 2^32 bytes so two 32-bit halves suffice.
  buf.writeUInt32LE(dataBytes >>> 0, pos);
  buf.writeUInt32LE(pad !== 0 ? ((0x80 | pad) << 24) >>> 0 : 0, pos + 4);
  return pad;
}

/**
 * Reads a length word. `zero` is true for an all-zero word: the end of the records in this
 * segment (a preallocated, never written tail).
 */
export function readFrameSize(buf: Buffer, pos: number): { recBytes: number; padBytes: number; zero: boolean } {
  const lo = buf.readUInt32LE(pos);
  const hi = buf.readUInt32LE(pos + 4);
  const recBytes = (hi & 0x00ffffff) * 0x100000000 + lo;
  // A set top bit (a negative int64 in Go) marks padding, stored in the top byte's low 3 bits.
  const padBytes = hi & 0x80000000 ? (hi >>> 24) & 0x7 : 0;
  return { recBytes, padBytes, zero: lo === 0 && hi === 0 };
}
