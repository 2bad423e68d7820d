// The pages of a bbolt file (layout in format.ts) and the walk of one tree in key order, treating
// the file as hostile: every offset, length and page id is checked against the page or the file
// before use, a page reached twice in one walk is an error (no cycles), and trees deeper than
// maxDepth are refused. A damaged file gives a BoltFormatError naming the page, never a crash,
// an out-of-range read or a hang.

import {
  bucketHeaderBytes, bucketLeafFlag, branchPageFlag, elementBytes, leafPageFlag, pageHeaderBytes,
} from './format.js';

/** Deeper trees or bucket nesting than this are refused (bbolt's trees are a few levels deep). */
export const maxDepth = 64;

/** The file is not a bbolt file, or is damaged (`page` names the page, when one is at fault). */
export class BoltFormatError extends Error {
  constructor(message: string, readonly page?: number) {
    super(page === undefined ? message : `page ${page}: ${message}`);
    this.name = 'BoltFormatError';
  }
}

/** Random access to the file's bytes. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset` (the caller keeps within `size`); they stay valid. */
  read(offset: number, length: number): Uint8Array;
  /**
   * The same bytes, in a buffer the source may reuse: valid only until the next readTransient
   * call. What a walk that keeps nothing reads its pages with (BoltReader.scan: an import's
   * pages); without it, `read` serves.
   */
  readTransient?(offset: number, length: number): Uint8Array;
}

const twoTo32 = 0x1_0000_0000;

/**
 * A little-endian u64 field (page ids, counts) as a number, refused past 2^53 (no real file
 * comes near: that is 2^53 pages). Two 32-bit reads: a BigInt per page was a walk's garbage.
 */
export function u64(buf: Buffer, at: number, page: number | undefined, what: string): number {
  const lo = buf.readUInt32LE(at);
  const hi = buf.readUInt32LE(at + 4);
  if (hi > 0x1f_ffff) throw new BoltFormatError(`${what} ${(BigInt(hi) << 32n) | BigInt(lo)} out of range`, page);
  return hi * twoTo32 + lo;
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The file's pages, each checked against the high-water mark `pgid` (pages [0, pgid) make up the file). */
export class Pages {
  private readonly readStable: (offset: number, length: number) => Uint8Array;
  private readonly readTransient: (offset: number, length: number) => Uint8Array;

  constructor(src: ByteSource, readonly pageSize: number, readonly pgid: number) {
    this.readStable = src.read.bind(src);
    this.readTransient = src.readTransient?.bind(src) ?? this.readStable;
  }

  /**
   * Page `id` with its overflow pages, its header checked (its own id, an overflow within the
   * file). `transient`: valid only until the next transient read (ByteSource.readTransient).
   */
  read(id: number, transient: boolean): Buffer {
    const { pgid, pageSize } = this;
    if (id < 2 || id >= pgid) throw new BoltFormatError(`page id out of range [2, ${pgid})`, id);
    const read = transient ? this.readTransient : this.readStable;
    // One read of the page (BoltReader.open checked the file holds pgid pages), a second only for its overflow.
    const first = asBuffer(read(id * pageSize, pageSize));
    const lo = first.readUInt32LE(0);
    const hi = first.readUInt32LE(4);
    if (lo !== id % twoTo32 || hi !== Math.floor(id / twoTo32)) throw new BoltFormatError(`header names page ${(BigInt(hi) << 32n) | BigInt(lo)}`, id);
    const overflow = first.readUInt32LE(12);
    if (id + overflow >= pgid) throw new BoltFormatError(`overflow of ${overflow} pages runs past the high-water mark ${pgid}`, id);
    return overflow === 0 ? first : asBuffer(read(id * pageSize, (overflow + 1) * pageSize));
  }
}

/** A page's flags, element count and overflow (the header fields Pages.read checked). */
export const pageFlags = (page: Buffer): number => page.readUInt16LE(8);
export const pageCount = (page: Buffer): number => page.readUInt16LE(10);
export const pageOverflow = (page: Buffer): number => page.readUInt32LE(12);

/** Where a bucket's tree is: a page id, or a leaf page stored inside the bucket's value. */
export type BucketRoot = { readonly page: number } | { readonly inline: Buffer };

/** The root of a bucket from its value (`at`: the page holding it, for messages; -1 when not known). */
export function bucketRoot(value: Buffer, at: number): BucketRoot {
  const where = at >= 0 ? at : undefined;
  if (value.length < bucketHeaderBytes) throw new BoltFormatError(`bucket value of ${value.length} bytes, shorter than a bucket header`, where);
  const root = u64(value, 0, where, 'bucket root');
  if (root !== 0) return { page: root };
  if (value.length < bucketHeaderBytes + pageHeaderBytes) throw new BoltFormatError('inline bucket without a page', where);
  return { inline: value.subarray(bucketHeaderBytes) };
}

/** One element at a time, in key order. */
export interface BoltCursor {
  /** Moves to the next element; false once there is none. */
  next(): boolean;
  /** The element's key and value (a nested bucket's value is its header) and whether it is a bucket. */
  readonly key: Buffer;
  readonly value: Buffer;
  readonly isBucket: boolean;
}

const empty = Buffer.alloc(0);

/** A branch page on the way down: its children's page ids (copied out: the page may be transient) and the next one to enter. */
interface BranchFrame { readonly children: number[]; next: number }

/**
 * The in-order walk of one tree (bbolt's Cursor, forward only): a stack of the branch pages
 * above the leaf being read, each kept as its children's ids, so no page's bytes are needed
 * once the walk left it. With transient reads an element's key and value are valid until the
 * next next() (the walk keeps its own copy of the previous key for the order check); with
 * stable reads they stay valid. `seen` collects the pages reached and their overflow counts
 * (BoltReader's check counts them); `nested` copies of the nested buckets' values met.
 */
export class TreeWalk implements BoltCursor {
  key: Buffer = empty;
  value: Buffer = empty;
  isBucket = false;
  readonly seen = new Map<number, number>();
  readonly nested: Buffer[] = [];
  private readonly branches: BranchFrame[] = [];
  private leaf: Buffer = empty;
  /** The leaf's page id, undefined for an inline bucket's page. */
  private leafId: number | undefined;
  private leafCount = 0;
  private leafNext = 0;
  private started = false;
  private prevKey = Buffer.allocUnsafe(64);
  private prevLength = -1;

  constructor(private readonly pages: Pages, private readonly root: BucketRoot, private readonly transient: boolean) {}

  next(): boolean {
    for (;;) {
      if (this.leafNext < this.leafCount) {
        this.element(this.leafNext++);
        return true;
      }
      if (!this.started) {
        this.started = true;
        this.enterRoot();
        continue;
      }
      const top = this.branches[this.branches.length - 1];
      if (top === undefined) return false;
      if (top.next === top.children.length) {
        this.branches.pop();
        continue;
      }
      this.enter(top.children[top.next++]!, this.branches.length);
    }
  }

  private enterRoot(): void {
    if ('page' in this.root) return this.enter(this.root.page, 0);
    const buf = this.root.inline;
    if ((pageFlags(buf) & leafPageFlag) === 0) throw new BoltFormatError(`inline bucket page has flags 0x${pageFlags(buf).toString(16)}, not a leaf`);
    this.enterLeaf(buf, undefined);
  }

  private enter(id: number, depth: number): void {
    if (depth > maxDepth) throw new BoltFormatError(`tree deeper than ${maxDepth}`, id);
    if (this.seen.has(id)) throw new BoltFormatError('reached twice (a cycle or a shared page)', id);
    const page = this.pages.read(id, this.transient);
    this.seen.set(id, pageOverflow(page));
    const flags = pageFlags(page);
    if (flags & leafPageFlag) return this.enterLeaf(page, id);
    if ((flags & branchPageFlag) === 0) throw new BoltFormatError(`invalid page type (flags 0x${flags.toString(16)}) in a tree`, id);
    const count = pageCount(page);
    if (count === 0) throw new BoltFormatError('empty branch page', id);
    checkElements(page, count, id);
    const children = new Array<number>(count);
    for (let i = 0; i < count; i++) children[i] = u64(page, pageHeaderBytes + i * elementBytes + 8, id, 'child page id');
    this.branches.push({ children, next: 0 });
    this.leafCount = 0;
    this.leafNext = 0;
  }

  private enterLeaf(page: Buffer, id: number | undefined): void {
    const count = pageCount(page);
    checkElements(page, count, id);
    this.leaf = page;
    this.leafId = id;
    this.leafCount = count;
    this.leafNext = 0;
  }

  private element(i: number): void {
    const buf = this.leaf;
    const at = pageHeaderBytes + i * elementBytes;
    const flags = buf.readUInt32LE(at);
    const start = at + buf.readUInt32LE(at + 4);
    const ksize = buf.readUInt32LE(at + 8);
    const vsize = buf.readUInt32LE(at + 12);
    if (start + ksize + vsize > buf.length) throw new BoltFormatError(`element ${i} (${ksize}+${vsize} bytes at ${start}) overruns the page`, this.leafId);
    const key = buf.subarray(start, start + ksize);
    if (this.prevLength >= 0 && key.compare(this.prevKey, 0, this.prevLength) <= 0) throw new BoltFormatError(`element ${i}: keys out of order`, this.leafId);
    if (ksize > this.prevKey.length) this.prevKey = Buffer.allocUnsafe(Math.max(ksize, 2 * this.prevKey.length));
    buf.copy(this.prevKey, 0, start, start + ksize);
    this.prevLength = ksize;
    this.key = key;
    this.value = buf.subarray(start + ksize, start + ksize + vsize);
    this.isBucket = (flags & bucketLeafFlag) !== 0;
    if (this.isBucket) this.nested.push(Buffer.from(this.value));
  }
}

/** The element array fits in the page. */
function checkElements(page: Buffer, count: number, id: number | undefined): void {
  if (pageHeaderBytes + count * elementBytes > page.length) throw new BoltFormatError(`${count} elements overrun the page`, id);
}
