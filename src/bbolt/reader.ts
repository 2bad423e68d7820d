// Reads a bbolt file (layout in format.ts) from any byte source, treating it as hostile (see
// pages.ts: every offset, length and page id checked, no cycles, a depth bound). A damaged
// file gives a BoltFormatError naming the page, never a crash, an out-of-range read or a hang.

import fs from 'node:fs';
import { fnv64a, freelistPageFlag, magic, metaBytes, metaPageFlag, pageHeaderBytes, version, type Meta } from './format.js';
import {
  BoltFormatError, Pages, TreeWalk, bucketRoot, maxDepth, pageCount, pageFlags, pageOverflow, u64,
  type BoltCursor, type BucketRoot, type ByteSource,
} from './pages.js';

export { BoltFormatError, maxDepth, type BoltCursor, type ByteSource } from './pages.js';

const minPageSize = 512;
const maxPageSize = 64 * 1024;
const noFreelist = 0xffffffffffffffffn;

export function bufferSource(buf: Uint8Array): ByteSource {
  return { size: buf.length, read: (offset, length) => buf.subarray(offset, offset + length) };
}

/** Bytes fileSource reads at once: a walk meets most pages in file order, so one read serves many. */
const readAheadBytes = 1024 * 1024;
/** Blocks fileSource keeps, most recently used first, for each kind of read (its memory: 2 * readAheadBlocks * readAheadBytes). */
const readAheadBlocks = 4;

/** Blocks of a file, most recently used first, read with positioned reads. */
class BlockCache {
  private readonly blocks: { start: number; buf: Buffer }[] = [];

  /** reuse: a block evicted is read over (transient reads); otherwise each block read is a new buffer. */
  constructor(private readonly readInto: (buf: Buffer, offset: number, length: number) => void, private readonly size: number, private readonly reuse: boolean) {}

  /** The block starting at `start` (a multiple of readAheadBytes). */
  block(start: number): Buffer {
    const i = this.blocks.findIndex((b) => b.start === start);
    if (i === 0) return this.blocks[0]!.buf;
    if (i > 0) {
      const hit = this.blocks.splice(i, 1)[0]!;
      this.blocks.unshift(hit);
      return hit.buf;
    }
    const length = Math.min(readAheadBytes, this.size - start);
    const evicted = this.blocks.length === readAheadBlocks ? this.blocks.pop() : undefined;
    // Filled below, or an error is thrown. A reused block must fit any block, a kept one only its own.
    const buf = this.reuse ? evicted?.buf ?? Buffer.allocUnsafe(readAheadBytes) : Buffer.allocUnsafe(length);
    this.readInto(buf, start, length);
    this.blocks.unshift({ start, buf });
    return buf;
  }
}

/**
 * A file read with positioned reads in blocks of readAheadBytes (not loaded whole); close()
 * when done. read(): a block is never reused once read, so what it returned stays valid (a
 * bucket name, a key kept by a caller) and keeps only its own block alive. readTransient():
 * a few blocks read over and over, and one buffer for reads that cross a block (a long
 * overflow run, at most as long as the file): an import reads 1.5 GB through 4 MiB, where a
 * new 1 MiB buffer per block made the V8 heap collect every few blocks.
 */
export function fileSource(path: string): ByteSource & Required<Pick<ByteSource, 'readTransient'>> & { close(): void } {
  const fd = fs.openSync(path, 'r');
  const size = fs.fstatSync(fd).size;
  const readInto = (b: Buffer, offset: number, length: number): void => {
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, b, got, length - got, offset + got);
      if (n === 0) throw new BoltFormatError(`file ended at ${offset + got} bytes, before ${offset + length}`);
      got += n;
    }
  };
  const stable = new BlockCache(readInto, size, false);
  const transient = new BlockCache(readInto, size, true);
  let crossing = Buffer.alloc(0);
  /** A read within one block (a page; most overflow runs) comes from it, others go to the file. */
  const withinBlock = (offset: number, length: number): number | undefined => {
    const start = offset - (offset % readAheadBytes);
    return offset + length > start + readAheadBytes || offset + length > size ? undefined : start;
  };
  return {
    size,
    read(offset, length) {
      const start = withinBlock(offset, length);
      if (start === undefined) {
        const b = Buffer.allocUnsafe(length);
        readInto(b, offset, length);
        return b;
      }
      return stable.block(start).subarray(offset - start, offset - start + length);
    },
    readTransient(offset, length) {
      const start = withinBlock(offset, length);
      if (start === undefined) {
        if (crossing.length < length) crossing = Buffer.allocUnsafe(length);
        readInto(crossing, offset, length);
        return crossing.subarray(0, length);
      }
      return transient.block(start).subarray(offset - start, offset - start + length);
    },
    close: () => fs.closeSync(fd),
  };
}

/** One element of a bucket: a key/value pair, or (isBucket) a nested bucket whose value is its header. */
export interface BoltEntry { readonly key: Buffer; readonly value: Buffer; readonly isBucket: boolean }

/** A check made along the caller's walks (BoltReader.checkAlong). */
export interface BoltCheckAlong {
  /**
   * The elements of top-level bucket `name`, as BoltReader.scan gives them (transient); a walk
   * to the end counts for the check.
   */
  scan(name: Uint8Array): BoltCursor | undefined;
  /** Walks what was not walked and returns the problems check() would. */
  problems(): string[];
}

/** What a walk to the end of a top-level bucket left for the check: its pages and its nested buckets' values. */
interface Walked { readonly seen: ReadonlyMap<number, number>; readonly nested: readonly Buffer[] }

export class BoltReader {
  private readonly pages: Pages;

  private constructor(src: ByteSource, readonly meta: Meta) {
    this.pages = new Pages(src, meta.pageSize, meta.pgid);
  }

  /** Opens the file: the valid meta page with the higher txid, checked against the file's size. */
  static open(src: ByteSource): BoltReader {
    if (src.size < pageHeaderBytes + metaBytes) throw new BoltFormatError(`file too small for a bbolt database (${src.size} bytes)`);
    const m0 = parseMeta(src, 0, 0);
    const m1 = parseMeta(src, 1, typeof m0 === 'string' ? 4096 : m0.pageSize);
    let meta: Meta;
    if (typeof m0 === 'string' && typeof m1 === 'string') throw new BoltFormatError(`invalid database: meta page 0: ${m0}; meta page 1: ${m1}`);
    else if (typeof m0 === 'string') meta = m1 as Meta;
    else if (typeof m1 === 'string') meta = m0;
    else meta = m1.txid > m0.txid ? m1 : m0;
    if (meta.pgid * meta.pageSize > src.size) {
      throw new BoltFormatError(`file is truncated: its meta page counts ${meta.pgid} pages (${meta.pgid * meta.pageSize} bytes), the file has ${src.size} bytes`);
    }
    return new BoltReader(src, meta);
  }

  get pageSize(): number { return this.meta.pageSize; }
  /** The database's size as bbolt reports it (Tx.Size: pages up to the high-water mark). */
  get size(): number { return this.meta.pgid * this.meta.pageSize; }

  /** Every element of the root bucket (top-level bucket names, with isBucket set). */
  *rootEntries(): Generator<BoltEntry, void, undefined> {
    yield* entries(new TreeWalk(this.pages, { page: this.meta.root }, false));
  }

  /** Names of the top-level buckets, in key order. */
  bucketNames(): Buffer[] {
    return [...this.rootEntries()].filter((e) => e.isBucket).map((e) => e.key);
  }

  /** The elements of top-level bucket `name` in key order (they stay valid), or undefined if there is no such bucket. */
  bucket(name: Uint8Array): Iterable<BoltEntry> | undefined {
    const root = this.bucketRootOf(name);
    if (root === undefined) return undefined;
    return { [Symbol.iterator]: () => entries(new TreeWalk(this.pages, root, false)) };
  }

  /**
   * The elements of top-level bucket `name` in key order, one at a time: each key and value is
   * valid only until the next next() (the pages are read transiently, see
   * ByteSource.readTransient), so copy what you keep. For walks over a whole file (an import,
   * a hash) that allocate nothing per page.
   */
  scan(name: Uint8Array): BoltCursor | undefined {
    const root = this.bucketRootOf(name);
    return root === undefined ? undefined : new TreeWalk(this.pages, root, true);
  }

  private bucketRootOf(name: Uint8Array): BucketRoot | undefined {
    const e = [...this.rootEntries()].find((x) => x.isBucket && Buffer.compare(x.key, name) === 0);
    return e === undefined ? undefined : bucketRoot(e.value, this.meta.root);
  }

  /** The free page ids the freelist page lists. */
  freePages(): number[] {
    if (this.meta.freelist === -1) return [];
    const id = this.meta.freelist;
    const p = this.pages.read(id, false);
    if ((pageFlags(p) & freelistPageFlag) === 0) throw new BoltFormatError(`freelist page has flags 0x${pageFlags(p).toString(16)}`, id);
    let count = pageCount(p);
    let at = pageHeaderBytes;
    if (count === 0xffff) {
      count = u64(p, at, id, 'freelist count');
      at += 8;
    }
    if (at + count * 8 > p.length) throw new BoltFormatError(`freelist of ${count} ids overruns the page`, id);
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const free = u64(p, at + i * 8, id, 'free page id');
      if (free < 2 || free >= this.meta.pgid) throw new BoltFormatError(`free page id ${free} out of range`, id);
      ids.push(free);
    }
    return ids;
  }

  /**
   * bbolt's Tx.Check: every page below the high-water mark is reached exactly once (meta,
   * freelist, or a bucket's tree) or is free. A file without a freelist page (etcd 3.4 runs
   * bbolt with NoFreelistSync) has every unreached page free, as bbolt rebuilds its freelist
   * by the same walk. Returns the problems found (empty when sound);
   * a structural error in a page is thrown as BoltFormatError.
   */
  check(): string[] {
    return this.checkAlong().problems();
  }

  /**
   * check() spread over walks a caller makes anyway (an import reads every bucket once; a
   * check before it read the whole file a second time): `scan(name)` walks as
   * BoltReader.scan does and records the pages a walk to the end reached; `problems()` walks
   * only what was not walked so (the root, other buckets, nested buckets) and returns what
   * check() returns. A structural error is thrown by whichever walk meets it.
   */
  checkAlong(): BoltCheckAlong {
    const walked = new Map<string, Walked>();
    return {
      scan: (name) => {
        const root = this.bucketRootOf(name);
        if (root === undefined) return undefined;
        const walk = new TreeWalk(this.pages, root, true);
        const key = Buffer.from(name).toString('latin1');
        return {
          next: () => {
            if (walk.next()) return true;
            walked.set(key, walk);
            return false;
          },
          get key() { return walk.key; },
          get value() { return walk.value; },
          get isBucket() { return walk.isBucket; },
        };
      },
      problems: () => this.checkPages(walked),
    };
  }

  private checkPages(walked: ReadonlyMap<string, Walked>): string[] {
    const problems: string[] = [];
    const reached = new Set<number>([0, 1]);
    const mark = (id: number, overflow: number): void => {
      for (let i = id; i <= id + overflow; i++) {
        if (reached.has(i)) problems.push(`page ${i}: multiple references`);
        reached.add(i);
      }
    };
    const free = new Set(this.freePages());
    if (this.meta.freelist !== -1) mark(this.meta.freelist, pageOverflow(this.pages.read(this.meta.freelist, false)));
    // A tree is walked to its end before its nested buckets are (a transient walk's page must
    // not be read over by another walk); its own pages are counted after theirs.
    const visit = (root: BucketRoot, depth: number): void => {
      if (depth > maxDepth) throw new BoltFormatError(`buckets nested deeper than ${maxDepth}`);
      const walk = new TreeWalk(this.pages, root, true);
      const done: { name: string; walked: Walked | undefined; value: Buffer }[] = [];
      while (walk.next()) {
        if (!walk.isBucket) continue;
        const name = walk.key.toString('latin1');
        done.push({ name, walked: depth === 0 ? walked.get(name) : undefined, value: walk.nested[walk.nested.length - 1]! });
      }
      for (const d of done) {
        if (d.walked === undefined) {
          visit(bucketRoot(d.value, -1), depth + 1);
          continue;
        }
        for (const [id, overflow] of d.walked.seen) mark(id, overflow);
        for (const v of d.walked.nested) visit(bucketRoot(v, -1), depth + 2);
      }
      for (const [id, overflow] of walk.seen) mark(id, overflow);
    };
    visit({ page: this.meta.root }, 0);
    for (let i = 0; i < this.meta.pgid; i++) {
      if (!reached.has(i) && !free.has(i) && this.meta.freelist !== -1) problems.push(`page ${i}: unreachable unfreed`);
      if (reached.has(i) && free.has(i)) problems.push(`page ${i}: reachable freed`);
    }
    return problems;
  }
}

/** A stable walk's elements as objects. */
function* entries(walk: TreeWalk): Generator<BoltEntry, void, undefined> {
  while (walk.next()) yield { key: walk.key, value: walk.value, isBucket: walk.isBucket };
}

/** Meta page `n` (at n * pageSize) or why it is invalid. */
function parseMeta(src: ByteSource, n: number, pageSize: number): Meta | string {
  const at = n * pageSize;
  if (at + pageHeaderBytes + metaBytes > src.size) return 'beyond the end of the file';
  const page = Buffer.from(src.read(at, pageHeaderBytes + metaBytes));
  if ((page.readUInt16LE(8) & metaPageFlag) === 0) return `flags 0x${page.readUInt16LE(8).toString(16)}, not a meta page`;
  const m = page.subarray(pageHeaderBytes);
  if (m.readUInt32LE(0) !== magic) return 'invalid magic';
  if (m.readUInt32LE(4) !== version) return `version ${m.readUInt32LE(4)}, expected ${version}`;
  const checksum = m.readBigUInt64LE(56);
  if (checksum !== 0n && checksum !== fnv64a(m.subarray(0, 56))) return 'checksum error';
  const ps = m.readUInt32LE(8);
  if (ps < minPageSize || ps > maxPageSize || (ps & (ps - 1)) !== 0) return `page size ${ps} out of range`;
  const big = (o: number): number | undefined => {
    const v = m.readBigUInt64LE(o);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
  };
  const root = big(16);
  const freelistRaw = m.readBigUInt64LE(32);
  const freelist = freelistRaw === noFreelist ? -1 : big(32);
  const pgid = big(40);
  const txid = big(48);
  if (root === undefined || freelist === undefined || pgid === undefined || txid === undefined) return 'field out of range';
  if (pgid < 3 || root < 2 || root >= pgid || (freelist !== -1 && (freelist < 2 || freelist >= pgid))) {
    return `root ${root} or freelist ${freelistRaw} outside [2, ${pgid})`;
  }
  return { pageSize: ps, flags: m.readUInt32LE(12), root, rootSequence: m.readBigUInt64LE(24), freelist, pgid, txid };
}
