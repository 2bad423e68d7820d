// Writes a bbolt file as a stream of pages, in two passes over the source: the first pass
// plans the layout (which entries go on which leaf, the branch pages above them, every page
// id), keeping only one key per leaf page; the second pass reads the entries again and emits
// the pages in file order. So the meta pages (which name the root page and the page count)
// can come first, the total size is known before the first byte, and the file is never held
// in memory. The source must yield the same entries both times (a read transaction does).
//
// Layout: pages 0 and 1 meta, page 2 an empty freelist, then each bucket's leaves and its
// branch levels bottom-up, then the root bucket's pages. Every page is reachable, so bbolt's
// tx.Check (run by `etcdctl snapshot status`) finds nothing to report. Leaves are filled to
// the page size (bbolt splits on its own later writes); buckets small enough are inlined as
// bbolt does (a single leaf of at most pageSize/4 bytes).

import {
  bucketHeaderBytes, bucketLeafFlag, branchPageFlag, defaultPageSize, elementBytes, freelistPageFlag,
  leafPageFlag, maxElementsPerPage, pageHeaderBytes, writeMetaPage, writePageHeader,
} from './format.js';

/** One top-level bucket: its entries in strictly increasing bytewise key order, keys non-empty. */
export interface BoltBucketSource {
  readonly name: Uint8Array;
  /**
   * Called twice (plan, then write); must yield the same entries both times. An entry's key
   * and value may be views the next entry overwrites: the writer copies what it keeps.
   */
  entries(): Iterable<readonly [Uint8Array, Uint8Array]>;
}

export interface BoltWriterOptions {
  pageSize?: number;
  /** Transaction id in meta page 0 (meta page 1 gets one less, as bbolt's Tx.WriteTo does). */
  txid?: number;
}

/** The source yielded different entries in the second pass than in the first. */
export class BoltSourceChangedError extends Error {
  constructor(bucket: Uint8Array, what: string) {
    super(`bbolt writer: bucket ${JSON.stringify(Buffer.from(bucket).toString('latin1'))} changed between passes (${what})`);
    this.name = 'BoltSourceChangedError';
  }
}

/**
 * Growable columns of numbers (page ids, byte counts: safe to 2^53). A plan keeps one entry
 * per page, and a 1 GiB store has ~131k leaves: objects per leaf cost ~400 heap bytes each and
 * a full GC to trace, where a column entry costs 8 bytes and nothing to trace.
 */
class NumberColumn {
  private values = new Float64Array(64);
  length = 0;
  push(v: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = v;
  }
  at(i: number): number {
    if (i >= this.length) throw new RangeError(`bbolt writer: column index ${i} past ${this.length}`);
    return this.values[i];
  }
}

/** Keys packed end to end in one growable buffer (a leaf's first key, copied as it comes). */
class KeyColumn {
  private bytes = Buffer.allocUnsafe(4096);
  private used = 0;
  private readonly ends = new NumberColumn();
  get length(): number { return this.ends.length; }
  push(key: Uint8Array): void {
    if (this.used + key.length > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + key.length));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    this.bytes.set(key, this.used);
    this.used += key.length;
    this.ends.push(this.used);
  }
  lengthAt(i: number): number { return this.ends.at(i) - (i === 0 ? 0 : this.ends.at(i - 1)); }
  /** Key `i` as a view (valid while the column lives; not to be kept past the next push). */
  at(i: number): Buffer { return this.bytes.subarray(i === 0 ? 0 : this.ends.at(i - 1), this.ends.at(i)); }
}

/** A bucket's leaves in file order: element count, bytes (page header included), page id, first key. */
class LeafColumns {
  readonly count = new NumberColumn();
  readonly bytes = new NumberColumn();
  readonly pgid = new NumberColumn();
  readonly firstKey = new KeyColumn();
  /** Leaves closed so far (a leaf being filled has its first key in already). */
  get length(): number { return this.count.length; }
  open(firstKey: Uint8Array): void { this.firstKey.push(firstKey); }
  close(count: number, bytes: number, pgid: number): void {
    this.count.push(count);
    this.bytes.push(bytes);
    this.pgid.push(pgid);
  }
}

/**
 * One level of branch pages: branch b holds the children [childEnd(b-1), childEnd(b)) of the
 * level below, and its key is the first key of leaf firstLeaf(b) (a branch's key is its first
 * child's, down to a leaf).
 */
class BranchLevel {
  readonly childEnd = new NumberColumn();
  readonly firstLeaf = new NumberColumn();
  readonly bytes = new NumberColumn();
  readonly pgid = new NumberColumn();
  get length(): number { return this.pgid.length; }
  childStart(b: number): number { return b === 0 ? 0 : this.childEnd.at(b - 1); }
}

interface TreePlan { readonly leaves: LeafColumns; readonly branchLevels: readonly BranchLevel[]; readonly root: number }
interface BucketPlan { readonly source: BoltBucketSource; readonly inlineValue?: Buffer; readonly tree?: TreePlan }

/** An element of a leaf held in memory (the root bucket's, an inline bucket's). */
interface LeafElement { readonly flags: number; readonly key: Uint8Array; readonly value: Uint8Array }

/** A planned bbolt file: `size` bytes, emitted by `pages()`. */
export interface BoltFilePlan {
  readonly size: number;
  readonly pageSize: number;
  /**
   * The file's bytes in order, a page (or a page with its overflow) at a time. A yielded
   * buffer may be reused once the next one is pulled: consume it first.
   */
  pages(): Generator<Buffer, void, undefined>;
}

const pagesFor = (bytes: number, pageSize: number): number => Math.ceil(bytes / pageSize);
/** bbolt's minKeysPerPage: a node is never split below two keys. */
const minKeysPerLeaf = 2;

/** Plans a bbolt file holding `buckets` (top-level buckets, any order) and returns its page stream. */
export function planBoltFile(buckets: readonly BoltBucketSource[], opts: BoltWriterOptions = {}): BoltFilePlan {
  const steps = planSteps(buckets, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * planBoltFile without holding the event loop for the whole first pass: it yields to the
 * loop (setImmediate) every planStepEntries entries or planStepBytes bytes, so a server keeps
 * serving meanwhile.
 */
export async function planBoltFileAsync(buckets: readonly BoltBucketSource[], opts: BoltWriterOptions = {}): Promise<BoltFilePlan> {
  const steps = planSteps(buckets, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Entries, bytes of keys and values, and milliseconds planned between two yields of planSteps
 * (the clock is read every planClockEntries entries); the time bound holds on a loaded machine.
 */
const planStepEntries = 4096;
const planStepBytes = 4 * 1024 * 1024;
const planStepMs = 2;
const planClockEntries = 64;

/** The first pass as a generator: yields now and then (see planBoltFileAsync), returns the plan. */
function* planSteps(buckets: readonly BoltBucketSource[], opts: BoltWriterOptions): Generator<void, BoltFilePlan, undefined> {
  const pageSize = opts.pageSize ?? defaultPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) throw new RangeError(`bbolt writer: page size ${pageSize} is not a power of two >= 512`);
  const txid = opts.txid ?? 2;
  if (txid < 1) throw new RangeError('bbolt writer: txid must be at least 1');
  const sorted = [...buckets].sort((a, b) => Buffer.compare(a.name, b.name));
  for (let i = 1; i < sorted.length; i++) {
    if (Buffer.compare(sorted[i - 1].name, sorted[i].name) === 0) throw new Error('bbolt writer: duplicate bucket name');
  }
  let next = 3; // 0, 1: meta; 2: freelist
  const alloc = (n: number): number => { const id = next; next += n; return id; };
  const plans: BucketPlan[] = [];
  for (const source of sorted) plans.push(yield* planBucket(source, pageSize, alloc));
  const rootElements: LeafElement[] = plans.map((p) => ({ flags: bucketLeafFlag, key: p.source.name, value: bucketValue(p) }));
  const rootTree = yield* planTree(groupInMemory(rootElements, pageSize), pageSize, alloc);
  const pgid = next;
  const meta = { pageSize, flags: 0, root: rootTree.tree.root, rootSequence: 0n, freelist: 2, pgid, txid };
  return {
    size: pgid * pageSize,
    pageSize,
    *pages() {
      const page = Buffer.alloc(pageSize);
      writeMetaPage(page, 0, meta);
      yield page;
      page.fill(0);
      writeMetaPage(page, 1, { ...meta, txid: txid - 1 });
      yield page;
      page.fill(0);
      writePageHeader(page, 2, freelistPageFlag, 0, 0);
      yield page;
      for (const p of plans) if (p.tree) yield* emitBucket(p.source, p.tree, pageSize);
      yield* emitTree(rootTree.tree, rootTree.groups, pageSize);
    },
  };
}

function bucketValue(p: BucketPlan): Buffer {
  if (p.inlineValue) return p.inlineValue;
  const v = Buffer.alloc(bucketHeaderBytes);
  v.writeBigUInt64LE(BigInt(p.tree!.root), 0);
  return v;
}

/** First pass over one bucket: leaf boundaries, inline or not, page ids. */
function* planBucket(source: BoltBucketSource, pageSize: number, alloc: (n: number) => number): Generator<void, BucketPlan, undefined> {
  const maxInlineBytes = pageSize / 4;
  // Leaves get their page ids as they close: the bucket's leaves come first, in key order.
  const leaves = new LeafColumns();
  let small: LeafElement[] | undefined = [];
  let smallBytes = pageHeaderBytes;
  // The previous key, copied into one reused buffer (an entry's key may be a transient view).
  let prev = Buffer.allocUnsafe(256);
  let prevBytes = -1;
  let curCount = 0;
  let curBytes = pageHeaderBytes;
  let stepEntries = 0;
  let stepBytes = 0;
  let stepStartedMs = performance.now();
  for (const [key, value] of source.entries()) {
    stepBytes += key.length + value.length;
    ++stepEntries;
    if (stepEntries === planStepEntries || stepBytes >= planStepBytes
      || (stepEntries % planClockEntries === 0 && performance.now() - stepStartedMs >= planStepMs)) {
      stepEntries = 0;
      stepBytes = 0;
      yield;
      stepStartedMs = performance.now();
    }
    if (key.length === 0) throw new Error('bbolt writer: empty key');
    if (prevBytes >= 0 && prev.compare(key, 0, key.length, 0, prevBytes) >= 0) throw new Error('bbolt writer: keys not in strictly increasing order');
    const size = elementBytes + key.length + value.length;
    // A leaf takes the element while it still fits the pages the leaf needs anyway, or while
    // the leaf has fewer than bbolt's minKeysPerPage (2): as bbolt splits, so values larger
    // than half a page go two to a leaf (3 pages for two 4.2 KB values, not 4).
    const grows = pagesFor(curBytes + size, pageSize) > pagesFor(curBytes, pageSize);
    if (curCount > 0 && ((grows && curCount >= minKeysPerLeaf) || curCount === maxElementsPerPage)) {
      leaves.close(curCount, curBytes, alloc(pagesFor(curBytes, pageSize)));
      curCount = 0;
      curBytes = pageHeaderBytes;
    }
    if (curCount === 0) leaves.open(key);
    curCount++;
    curBytes += size;
    if (key.length > prev.length) prev = Buffer.allocUnsafe(key.length * 2);
    prev.set(key);
    prevBytes = key.length;
    if (small) {
      smallBytes += size;
      small = smallBytes <= maxInlineBytes ? [...small, { flags: 0, key: Buffer.from(key), value: Buffer.from(value) }] : undefined;
    }
  }
  if (small) return { source, inlineValue: inlineBucketValue(small) };
  leaves.close(curCount, curBytes, alloc(pagesFor(curBytes, pageSize)));
  return { source, tree: yield* planBranches(leaves, pageSize, alloc) };
}

function inlineBucketValue(elements: LeafElement[]): Buffer {
  return Buffer.concat([Buffer.alloc(bucketHeaderBytes), encodeLeaf(0, elements, leafBytes(elements), 0)]);
}

function leafBytes(elements: readonly LeafElement[]): number {
  let n = pageHeaderBytes;
  for (const e of elements) n += elementBytes + e.key.length + e.value.length;
  return n;
}

/** Splits in-memory elements into leaf groups as planBucket does. */
function groupInMemory(elements: LeafElement[], pageSize: number): LeafElement[][] {
  const groups: LeafElement[][] = [];
  let cur: LeafElement[] = [];
  let bytes = pageHeaderBytes;
  for (const e of elements) {
    const size = elementBytes + e.key.length + e.value.length;
    if (cur.length > 0 && (bytes + size > pageSize || cur.length === maxElementsPerPage)) {
      groups.push(cur);
      cur = [];
      bytes = pageHeaderBytes;
    }
    cur.push(e);
    bytes += size;
  }
  groups.push(cur);
  return groups;
}

function* planTree(groups: LeafElement[][], pageSize: number, alloc: (n: number) => number): Generator<void, { tree: TreePlan; groups: LeafElement[][] }, undefined> {
  const leaves = new LeafColumns();
  for (const g of groups) {
    const bytes = leafBytes(g);
    leaves.open(g[0]?.key ?? Buffer.alloc(0));
    leaves.close(g.length, bytes, alloc(pagesFor(bytes, pageSize)));
  }
  return { tree: yield* planBranches(leaves, pageSize, alloc), groups };
}

/**
 * Branch levels above `leaves`, bottom-up, until one page is the root; yields every
 * planStepEntries children (a 1 GiB store has ~131k leaves to go over).
 */
function* planBranches(leaves: LeafColumns, pageSize: number, alloc: (n: number) => number): Generator<void, TreePlan, undefined> {
  const branchLevels: BranchLevel[] = [];
  // The level below: its page count, and each page's id and first leaf (whose key it has).
  let below = { length: leaves.length, pgid: (i: number) => leaves.pgid.at(i), firstLeaf: (i: number) => i };
  while (below.length > 1) {
    const level = new BranchLevel();
    let children = 0;
    let bytes = pageHeaderBytes;
    let firstLeaf = 0;
    const close = (end: number): void => {
      level.childEnd.push(end);
      level.firstLeaf.push(firstLeaf);
      level.bytes.push(bytes);
      level.pgid.push(alloc(pagesFor(bytes, pageSize)));
      children = 0;
      bytes = pageHeaderBytes;
    };
    for (let c = 0; c < below.length; c++) {
      if (c % planStepEntries === planStepEntries - 1) yield;
      const leaf = below.firstLeaf(c);
      const size = elementBytes + leaves.firstKey.lengthAt(leaf);
      if (children > 0 && (bytes + size > pageSize || children === maxElementsPerPage)) close(c);
      if (children === 0) firstLeaf = leaf;
      children++;
      bytes += size;
    }
    close(below.length);
    branchLevels.push(level);
    below = { length: level.length, pgid: (i) => level.pgid.at(i), firstLeaf: (i) => level.firstLeaf.at(i) };
  }
  return { leaves, branchLevels, root: below.pgid(0) };
}

/** Second pass over one bucket: its leaves (written as the entries come), then its branches. */
function* emitBucket(source: BoltBucketSource, tree: TreePlan, pageSize: number): Generator<Buffer, void, undefined> {
  // One buffer reused for every leaf (grown for a leaf with overflow pages): a yielded page
  // is consumed before the next is pulled, so a large store's leaves make no garbage.
  let reused = Buffer.alloc(pageSize);
  const { leaves } = tree;
  let li = 0;
  let inLeaf = false;
  let count = 0;
  let bytes = 0;
  let page = reused;
  let i = 0;
  let dataOff = 0;
  for (const [key, value] of source.entries()) {
    if (!inLeaf) {
      if (li === leaves.length) throw new BoltSourceChangedError(source.name, 'more entries');
      if (Buffer.compare(leaves.firstKey.at(li), key) !== 0) throw new BoltSourceChangedError(source.name, 'a different first key');
      inLeaf = true;
      count = leaves.count.at(li);
      bytes = leaves.bytes.at(li);
      const pages = pagesFor(bytes, pageSize);
      if (reused.length < pages * pageSize) reused = Buffer.alloc(pages * pageSize);
      page = reused.subarray(0, pages * pageSize).fill(0);
      writePageHeader(page, leaves.pgid.at(li), leafPageFlag, count, pages - 1);
      i = 0;
      dataOff = pageHeaderBytes + count * elementBytes;
    }
    if (dataOff + key.length + value.length > bytes) throw new BoltSourceChangedError(source.name, 'larger entries');
    dataOff = putLeafElement(page, i, 0, key, value, dataOff);
    if (++i === count) {
      if (dataOff !== bytes) throw new BoltSourceChangedError(source.name, 'smaller entries');
      yield page;
      inLeaf = false;
      li++;
    }
  }
  if (inLeaf || li !== leaves.length) throw new BoltSourceChangedError(source.name, 'fewer entries');
  yield* emitBranches(tree, pageSize);
}

/** The root bucket's tree: leaves from memory, then branches. */
function* emitTree(tree: TreePlan, groups: LeafElement[][], pageSize: number): Generator<Buffer, void, undefined> {
  for (let i = 0; i < groups.length; i++) {
    const pages = pagesFor(tree.leaves.bytes.at(i), pageSize);
    yield encodeLeaf(tree.leaves.pgid.at(i), groups[i], pages * pageSize, pages - 1);
  }
  yield* emitBranches(tree, pageSize);
}

function* emitBranches(tree: TreePlan, pageSize: number): Generator<Buffer, void, undefined> {
  const keyOf = tree.leaves.firstKey;
  let below = { pgid: (i: number) => tree.leaves.pgid.at(i), firstLeaf: (i: number) => i };
  for (const level of tree.branchLevels) {
    for (let b = 0; b < level.length; b++) {
      const start = level.childStart(b);
      const n = level.childEnd.at(b) - start;
      const pages = pagesFor(level.bytes.at(b), pageSize);
      const page = Buffer.alloc(pages * pageSize);
      writePageHeader(page, level.pgid.at(b), branchPageFlag, n, pages - 1);
      let off = pageHeaderBytes + n * elementBytes;
      for (let i = 0; i < n; i++) {
        const key = keyOf.at(below.firstLeaf(start + i));
        const at = pageHeaderBytes + i * elementBytes;
        page.writeUInt32LE(off - at, at);
        page.writeUInt32LE(key.length, at + 4);
        page.writeBigUInt64LE(BigInt(below.pgid(start + i)), at + 8);
        page.set(key, off);
        off += key.length;
      }
      yield page;
    }
    below = { pgid: (i) => level.pgid.at(i), firstLeaf: (i) => level.firstLeaf.at(i) };
  }
}

/** A leaf page (`bytes` long, zero-padded, at least leafBytes(elements)) holding `elements`. */
function encodeLeaf(id: number, elements: readonly LeafElement[], bytes: number, overflow: number): Buffer {
  const page = Buffer.alloc(bytes);
  writePageHeader(page, id, leafPageFlag, elements.length, overflow);
  let off = pageHeaderBytes + elements.length * elementBytes;
  elements.forEach((e, i) => { off = putLeafElement(page, i, e.flags, e.key, e.value, off); });
  return page;
}

/** Writes leaf element `i` and its key and value at `dataOff`; returns the next data offset. */
function putLeafElement(page: Buffer, i: number, flags: number, key: Uint8Array, value: Uint8Array, dataOff: number): number {
  const at = pageHeaderBytes + i * elementBytes;
  page.writeUInt32LE(flags, at);
  page.writeUInt32LE(dataOff - at, at + 4);
  page.writeUInt32LE(key.length, at + 8);
  page.writeUInt32LE(value.length, at + 12);
  page.set(key, dataOff);
  page.set(value, dataOff + key.length);
  return dataOff + key.length + value.length;
}
