// Reads a bbolt file (layout in format.ts) from any byte source, treating it as hostile: every
// offset, length and page id is checked against the page or the file before use, a page
// reached twice in one walk is an error (no cycles), and trees and nested buckets deeper than
// maxDepth are refused. A damaged file gives a BoltFormatError naming the page, never a crash,
// an out-of-range read or a hang.

import fs from 'node:fs';
import {
  bucketHeaderBytes, bucketLeafFlag, branchPageFlag, elementBytes, fnv64a, freelistPageFlag, leafPageFlag,
  magic, metaBytes, metaPageFlag, pageHeaderBytes, version, type Meta,
} from './format.js';

/** Deeper trees or bucket nesting than this are refused (bbolt's trees are a few levels deep). */
export const maxDepth = 64;
const minPageSize = 512;
const maxPageSize = 64 * 1024;
const noFreelist = 0xffffffffffffffffn;

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
  /** Exactly `length` bytes at `offset` (the caller keeps within `size`). */
  read(offset: number, length: number): Uint8Array;
}

export function bufferSource(buf: Uint8Array): ByteSource {
  return { size: buf.length, read: (offset, length) => buf.subarray(offset, offset + length) };
}

/** Bytes fileSource reads at once: a walk meets most pages in file order, so one read serves many. */
const readAheadBytes = 1024 * 1024;
/** Blocks fileSource keeps, most recently used first (its memory: readAheadBlocks * readAheadBytes). */
const readAheadBlocks = 4;

/**
 * A file read with positioned reads in blocks of readAheadBytes (not loaded whole); close()
 * when done. A block is never reused once read: what read() returned stays valid (a bucket
 * name, a key kept by a caller) and keeps only its own block alive.
 */
export function fileSource(path: string): ByteSource & { close(): void } {
  const fd = fs.openSync(path, 'r');
  const size = fs.fstatSync(fd).size;
  const readExactly = (offset: number, length: number): Buffer => {
    const b = Buffer.allocUnsafe(length); // filled below, or an error is thrown
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, b, got, length - got, offset + got);
      if (n === 0) throw new BoltFormatError(`file ended at ${offset + got} bytes, before ${offset + length}`);
      got += n;
    }
    return b;
  };
  const blocks: { start: number; buf: Buffer }[] = [];
  const block = (start: number): Buffer => {
    const i = blocks.findIndex((b) => b.start === start);
    const hit = i >= 0 ? blocks.splice(i, 1)[0]! : { start, buf: readExactly(start, Math.min(readAheadBytes, size - start)) };
    blocks.unshift(hit);
    if (blocks.length > readAheadBlocks) blocks.pop();
    return hit.buf;
  };
  return {
    size,
    read(offset, length) {
      const start = offset - (offset % readAheadBytes);
      // A read within one block (a page; most overflow runs) comes from it, others go to the file.
      if (offset + length > start + readAheadBytes || offset + length > size) return readExactly(offset, length);
      return block(start).subarray(offset - start, offset - start + length);
    },
    close: () => fs.closeSync(fd),
  };
}

/** One element of a bucket: a key/value pair, or (isBucket) a nested bucket whose value is its header. */
export interface BoltEntry { readonly key: Buffer; readonly value: Buffer; readonly isBucket: boolean }

/** A check made along the caller's walks (BoltReader.checkAlong). */
export interface BoltCheckAlong {
  /** The elements of top-level bucket `name`, as BoltReader.bucket gives them; a complete walk counts for the check. */
  bucket(name: Uint8Array): Iterable<BoltEntry> | undefined;
  /** Walks what was not walked and returns the problems check() would. */
  problems(): string[];
}

/** Where a bucket's tree is: a page id, or a leaf page stored inside the bucket's value. */
type BucketRoot = { readonly page: number } | { readonly inline: Buffer };

interface Page { readonly id: number; readonly buf: Buffer; readonly flags: number; readonly count: number; readonly overflow: number }

export class BoltReader {
  private constructor(private readonly src: ByteSource, readonly meta: Meta) {}

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
    yield* this.walk({ page: this.meta.root }, new Map(), 0);
  }

  /** Names of the top-level buckets, in key order. */
  bucketNames(): Buffer[] {
    return [...this.rootEntries()].filter((e) => e.isBucket).map((e) => e.key);
  }

  /** The elements of top-level bucket `name` in key order, or undefined if there is no such bucket. */
  bucket(name: Uint8Array): Iterable<BoltEntry> | undefined {
    const root = this.bucketRootOf(name);
    if (root === undefined) return undefined;
    return { [Symbol.iterator]: () => this.walk(root, new Map(), 0) };
  }

  private bucketRootOf(name: Uint8Array): BucketRoot | undefined {
    const e = [...this.rootEntries()].find((x) => x.isBucket && Buffer.compare(x.key, name) === 0);
    return e === undefined ? undefined : this.bucketRoot(e.value, this.meta.root);
  }

  /** The free page ids the freelist page lists. */
  freePages(): number[] {
    if (this.meta.freelist === -1) return [];
    const p = this.page(this.meta.freelist);
    if ((p.flags & freelistPageFlag) === 0) throw new BoltFormatError(`freelist page has flags 0x${p.flags.toString(16)}`, p.id);
    let count = p.count;
    let at = pageHeaderBytes;
    if (count === 0xffff) {
      count = this.u64(p.buf, at, p.id, 'freelist count');
      at += 8;
    }
    if (at + count * 8 > p.buf.length) throw new BoltFormatError(`freelist of ${count} ids overruns the page`, p.id);
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.u64(p.buf, at + i * 8, p.id, 'free page id');
      if (id < 2 || id >= this.meta.pgid) throw new BoltFormatError(`free page id ${id} out of range`, p.id);
      ids.push(id);
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
   * check before it read the whole file a second time): `bucket(name)` iterates as
   * BoltReader.bucket does and records the pages a complete walk reached; `problems()` walks
   * only what was not walked so (the root, other buckets, nested buckets) and returns what
   * check() returns. A structural error is thrown by whichever walk meets it.
   */
  checkAlong(): BoltCheckAlong {
    const walked = new Map<string, { seen: Map<number, number>; nested: Buffer[] }>();
    return {
      bucket: (name) => {
        const root = this.bucketRootOf(name);
        if (root === undefined) return undefined;
        const self = this;
        return {
          *[Symbol.iterator]() {
            const seen = new Map<number, number>();
            const nested: Buffer[] = [];
            for (const e of self.walk(root, seen, 0)) {
              if (e.isBucket) nested.push(e.value);
              yield e;
            }
            walked.set(Buffer.from(name).toString('latin1'), { seen, nested });
          },
        };
      },
      problems: () => this.checkPages(walked),
    };
  }

  private checkPages(walked: ReadonlyMap<string, { seen: Map<number, number>; nested: Buffer[] }>): string[] {
    const problems: string[] = [];
    const reached = new Set<number>([0, 1]);
    const mark = (id: number, overflow: number): void => {
      for (let i = id; i <= id + overflow; i++) {
        if (reached.has(i)) problems.push(`page ${i}: multiple references`);
        reached.add(i);
      }
    };
    const free = new Set(this.freePages());
    if (this.meta.freelist !== -1) mark(this.meta.freelist, this.page(this.meta.freelist).overflow);
    const visit = (root: BucketRoot, depth: number): void => {
      if (depth > maxDepth) throw new BoltFormatError(`buckets nested deeper than ${maxDepth}`);
      const seen = new Map<number, number>();
      for (const e of this.walk(root, seen, 0)) {
        if (!e.isBucket) continue;
        const done = depth === 0 ? walked.get(e.key.toString('latin1')) : undefined;
        if (done === undefined) {
          visit(this.bucketRoot(e.value, -1), depth + 1);
          continue;
        }
        for (const [id, overflow] of done.seen) mark(id, overflow);
        for (const v of done.nested) visit(this.bucketRoot(v, -1), depth + 2);
      }
      for (const [id, overflow] of seen) mark(id, overflow);
    };
    visit({ page: this.meta.root }, 0);
    for (let i = 0; i < this.meta.pgid; i++) {
      if (!reached.has(i) && !free.has(i) && this.meta.freelist !== -1) problems.push(`page ${i}: unreachable unfreed`);
      if (reached.has(i) && free.has(i)) problems.push(`page ${i}: reachable freed`);
    }
    return problems;
  }

  /** The root of a bucket from its value (`at`: the page holding it, for messages). */
  private bucketRoot(value: Buffer, at: number): BucketRoot {
    const where = at >= 0 ? at : undefined;
    if (value.length < bucketHeaderBytes) throw new BoltFormatError(`bucket value of ${value.length} bytes, shorter than a bucket header`, where);
    const root = this.u64(value, 0, where, 'bucket root');
    if (root !== 0) return { page: root };
    if (value.length < bucketHeaderBytes + pageHeaderBytes) throw new BoltFormatError('inline bucket without a page', where);
    return { inline: value.subarray(bucketHeaderBytes) };
  }

  /** In-order walk of a tree; `seen` collects its pages and their overflow counts (a page met twice is an error). */
  private *walk(root: BucketRoot, seen: Map<number, number>, depth: number): Generator<BoltEntry, void, undefined> {
    const state = { prev: undefined as Buffer | undefined };
    if ('inline' in root) {
      const buf = root.inline;
      const p: Page = { id: -1, buf, flags: buf.readUInt16LE(8), count: buf.readUInt16LE(10), overflow: 0 };
      if ((p.flags & leafPageFlag) === 0) throw new BoltFormatError(`inline bucket page has flags 0x${p.flags.toString(16)}, not a leaf`);
      yield* this.leafEntries(p, state);
      return;
    }
    yield* this.walkPage(root.page, seen, depth, state);
  }

  private *walkPage(id: number, seen: Map<number, number>, depth: number, state: { prev: Buffer | undefined }): Generator<BoltEntry, void, undefined> {
    if (depth > maxDepth) throw new BoltFormatError(`tree deeper than ${maxDepth}`, id);
    if (seen.has(id)) throw new BoltFormatError('reached twice (a cycle or a shared page)', id);
    const p = this.page(id);
    seen.set(id, p.overflow);
    if (p.flags & leafPageFlag) {
      yield* this.leafEntries(p, state);
    } else if (p.flags & branchPageFlag) {
      if (p.count === 0) throw new BoltFormatError('empty branch page', id);
      this.checkElements(p);
      for (let i = 0; i < p.count; i++) {
        const at = pageHeaderBytes + i * elementBytes;
        yield* this.walkPage(this.u64(p.buf, at + 8, id, 'child page id'), seen, depth + 1, state);
      }
    } else {
      throw new BoltFormatError(`invalid page type (flags 0x${p.flags.toString(16)}) in a tree`, id);
    }
  }

  private *leafEntries(p: Page, state: { prev: Buffer | undefined }): Generator<BoltEntry, void, undefined> {
    const where = p.id >= 0 ? p.id : undefined;
    this.checkElements(p);
    for (let i = 0; i < p.count; i++) {
      const at = pageHeaderBytes + i * elementBytes;
      const flags = p.buf.readUInt32LE(at);
      const start = at + p.buf.readUInt32LE(at + 4);
      const ksize = p.buf.readUInt32LE(at + 8);
      const vsize = p.buf.readUInt32LE(at + 12);
      if (start + ksize + vsize > p.buf.length) throw new BoltFormatError(`element ${i} (${ksize}+${vsize} bytes at ${start}) overruns the page`, where);
      const key = p.buf.subarray(start, start + ksize);
      if (state.prev !== undefined && Buffer.compare(state.prev, key) >= 0) throw new BoltFormatError(`element ${i}: keys out of order`, where);
      state.prev = key;
      yield { key, value: p.buf.subarray(start + ksize, start + ksize + vsize), isBucket: (flags & bucketLeafFlag) !== 0 };
    }
  }

  /** The element array fits in the page. */
  private checkElements(p: Page): void {
    if (pageHeaderBytes + p.count * elementBytes > p.buf.length) {
      throw new BoltFormatError(`${p.count} elements overrun the page`, p.id >= 0 ? p.id : undefined);
    }
  }

  /** Page `id` with its overflow pages, checked against the high-water mark. */
  private page(id: number): Page {
    const { pgid, pageSize } = this.meta;
    if (id < 2 || id >= pgid) throw new BoltFormatError(`page id out of range [2, ${pgid})`, id);
    // One read of the page (open() checked the file holds pgid pages), a second only for its overflow.
    const first = this.src.read(id * pageSize, pageSize);
    const head = Buffer.from(first.buffer, first.byteOffset, first.byteLength);
    const stored = head.readBigUInt64LE(0);
    if (stored !== BigInt(id)) throw new BoltFormatError(`header names page ${stored}`, id);
    const overflow = head.readUInt32LE(12);
    if (id + overflow >= pgid) throw new BoltFormatError(`overflow of ${overflow} pages runs past the high-water mark ${pgid}`, id);
    const raw = overflow === 0 ? first : this.src.read(id * pageSize, (overflow + 1) * pageSize);
    const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    return { id, buf, flags: head.readUInt16LE(8), count: head.readUInt16LE(10), overflow };
  }

  private u64(buf: Buffer, at: number, page: number | undefined, what: string): number {
    const v = buf.readBigUInt64LE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BoltFormatError(`${what} ${v} out of range`, page);
    return Number(v);
  }
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
