// Revision keys as etcd lays them out in the key bucket (mvcc/revision.go, kvstore.go):
// 8-byte big-endian main, '_', 8-byte big-endian sub, and a trailing 't' for a tombstone.
// Byte order equals (main, sub) order, so a range scan over the bucket walks history in order.

export const REV_BYTES = 17;
export const MARKED_REV_BYTES = 18;
const TOMBSTONE = 0x74; // 't'
const SEP = 0x5f; // '_'
const TWO32 = 2 ** 32;

function writeU64(buf: Buffer, n: number, off: number): void {
  buf.writeUInt32BE(Math.floor(n / TWO32), off);
  buf.writeUInt32BE(n >>> 0, off + 4);
}

function readU64(buf: Uint8Array, off: number): number {
  return (((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0) * TWO32 +
    (((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0);
}

/** The bucket key of revision (main, sub); `tombstone` appends etcd's 't' mark. */
export function revKey(main: number, sub: number, tombstone = false): Buffer {
  const b = writeRevKey(Buffer.allocUnsafe(tombstone ? MARKED_REV_BYTES : REV_BYTES), main, sub);
  if (tombstone) b[17] = TOMBSTONE;
  return b;
}

/** Writes the (unmarked) bucket key of revision (main, sub) into the first REV_BYTES of `b`, a reused buffer; returns `b`. */
export function writeRevKey(b: Buffer, main: number, sub: number): Buffer {
  writeU64(b, main, 0);
  b[8] = SEP;
  writeU64(b, sub, 9);
  return b;
}

export function revMain(key: Uint8Array): number {
  return readU64(key, 0);
}

export function revSub(key: Uint8Array): number {
  return readU64(key, 9);
}

export function isTombstoneKey(key: Uint8Array): boolean {
  return key.length === MARKED_REV_BYTES && key[17] === TOMBSTONE;
}

/** A revision as a Map/Set key (compaction's keep set). */
export function revId(main: number, sub: number): string {
  return `${main}_${sub}`;
}

/** 8-byte big-endian unsigned, as etcd stores the consistent index. */
export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, n, 0);
  return b;
}

export function readU64BE(b: Uint8Array): number {
  return readU64(b, 0);
}
