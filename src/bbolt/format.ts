// bbolt's on-disk format (go.etcd.io/bbolt 1.3: page.go, db.go, bucket.go), little-endian:
//
//   page header (16 bytes): id u64 | flags u16 | count u16 | overflow u32
//   meta (at 16 in pages 0 and 1): magic u32 | version u32 | pageSize u32 | flags u32 |
//        root bucket {root u64, sequence u64} | freelist u64 | pgid u64 | txid u64 | checksum u64
//        (checksum = FNV-64a of the 56 bytes before it)
//   leaf element (16 bytes): flags u32 | pos u32 | ksize u32 | vsize u32
//   branch element (16 bytes): pos u32 | ksize u32 | pgid u64
//   `pos` counts from the element's own first byte; keys (and values) follow all elements.
//   A bucket's value is its header {root u64, sequence u64}; root 0 means "inline": a leaf
//   page (header and elements) follows the header inside the value itself.
//   A page spans 1 + overflow consecutive pages when its content needs them.

export const pageHeaderBytes = 16;
export const elementBytes = 16;
export const bucketHeaderBytes = 16;
export const metaBytes = 64;
export const defaultPageSize = 4096;

export const branchPageFlag = 0x01;
export const leafPageFlag = 0x02;
export const metaPageFlag = 0x04;
export const freelistPageFlag = 0x10;
export const bucketLeafFlag = 0x01;

export const magic = 0xed0cdaed;
export const version = 2;
/** A page's element count is a u16; bbolt refuses 0xFFFF and above (the freelist uses it as a marker). */
export const maxElementsPerPage = 0xfffe;

/** The fields of a meta page (page ids, counts and txids as numbers: safe to 2^53). */
export interface Meta {
  pageSize: number;
  flags: number;
  /** The root bucket's root page. */
  root: number;
  rootSequence: bigint;
  /** The freelist page, or -1 when the file keeps none (bbolt NoFreelistSync). */
  freelist: number;
  /** High-water mark: pages [0, pgid) make up the file. */
  pgid: number;
  txid: number;
}

const fnvOffset = 0xcbf29ce484222325n;
const fnvPrime = 0x100000001b3n;
const u64Mask = (1n << 64n) - 1n;

/** FNV-64a, as Go's hash/fnv New64a (meta checksums only: 56 bytes, so BigInt is fine). */
export function fnv64a(bytes: Uint8Array): bigint {
  let h = fnvOffset;
  for (const b of bytes) h = ((h ^ BigInt(b)) * fnvPrime) & u64Mask;
  return h;
}

/** Writes a meta page (page id `id`) into `page` (pageSize bytes, zeroed by the caller). */
export function writeMetaPage(page: Buffer, id: number, m: Meta): void {
  writePageHeader(page, id, metaPageFlag, 0, 0);
  const o = pageHeaderBytes;
  page.writeUInt32LE(magic, o);
  page.writeUInt32LE(version, o + 4);
  page.writeUInt32LE(m.pageSize, o + 8);
  page.writeUInt32LE(m.flags, o + 12);
  page.writeBigUInt64LE(BigInt(m.root), o + 16);
  page.writeBigUInt64LE(m.rootSequence, o + 24);
  page.writeBigUInt64LE(BigInt(m.freelist), o + 32);
  page.writeBigUInt64LE(BigInt(m.pgid), o + 40);
  page.writeBigUInt64LE(BigInt(m.txid), o + 48);
  page.writeBigUInt64LE(fnv64a(page.subarray(o, o + 56)), o + 56);
}

export function writePageHeader(page: Buffer, id: number, flags: number, count: number, overflow: number): void {
  page.writeBigUInt64LE(BigInt(id), 0);
  page.writeUInt16LE(flags, 8);
  page.writeUInt16LE(count, 10);
  page.writeUInt32LE(overflow, 12);
}

/** Bytes of a leaf page holding these elements. */
export function leafElementBytes(key: Uint8Array, value: Uint8Array): number {
  return elementBytes + key.length + value.length;
}
