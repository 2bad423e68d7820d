// The MVCC store: etcd's mvcc.store plus the KV half of etcdserver/apply.go (range options,
// put flags), over the LMDB backend. Txn compares and branches are the applier's
// (server/txn.ts), built on write() here.
//
// Every write goes to one main revision (a txn's changes share it, numbered by sub revision),
// is recorded in the in-memory key index, and is buffered in the backend, which makes it
// readable at once and commits it in batches. The consistent index is written by a backend
// hook at the start of each batch commit, so it always lands in the same LMDB transaction as
// the data it covers. Everything here runs synchronously on the caller's thread, except the
// physical part of a compaction, which proceeds in bounded batches between other work.

import { goSort } from './go-sort.js';
import { crc32c } from '@node-rs/crc32';
import { etcdError } from '../errors/index.js';
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from '../proto/index.js';
import { Event_EventType, type Event, type KeyValue } from '../proto/index.js';
import { DB_NAMES, type Backend } from '../storage/index.js';
import { decodeKeyValue, encodeKeyValue, encodeTombstone } from './kvcodec.js';
import { type KeyRevision } from './key_index.js';
import { readU64BE, revId, revKey, revMain, revSub, u64, writeRevKey, REV_BYTES } from './revision.js';
import { TreeIndex, type RangeEnd } from './tree_index.js';
import { KeyIndexRestore } from './index-restore.js';

const META_CONSISTENT_INDEX = Buffer.from('consistent_index');
const META_TERM = Buffer.from('term');
const META_SCHEDULED_COMPACT = Buffer.from('scheduledCompactRev');
const META_FINISHED_COMPACT = Buffer.from('finishedCompactRev');
const KEY_BUCKET_NAME = Buffer.from('key');
const EMPTY = Buffer.alloc(0);
/** The whole key space as a range: from the smallest key to the end. */
const FIRST_KEY = Buffer.from([0]);
const TO_THE_END: RangeEnd = Buffer.alloc(0);

export interface MvccStoreOptions {
  backend: Backend;
  /** Whether a lease exists (the lessor's lookup). Without it any nonzero lease is LeaseNotFound. */
  leaseExists?: (id: bigint) => boolean;
  /**
   * The lessor's hook: `key` now carries `lease` (0n when deleted or put without one). Called
   * for every put and every deleted key, and at open for every live key with a lease (the
   * lessor rebuilds its attached keys from the key bucket, as etcd's restore does).
   */
  onKeyLease?: (key: Buffer, lease: bigint) => void;
  /** Keys (index) and revisions (backend) handled per compaction step. Default 1000 as etcd. */
  compactionBatchLimit?: number;
  /** Called after each write that changed something, with its events in order (for watchers). */
  onChanges?: (events: Event[], revision: number) => void;
  /**
   * Asked as a write begins: does onChanges want its events? False skips building them (an
   * event per change, its KeyValue decoded): the watchable store says false while no watcher
   * is synced, as on a plain put load. A write is synchronous, so the answer holds until it ends.
   */
  wantsChanges?: () => boolean;
  /** Called when a compaction at `revision` is accepted, before anything is removed (watch: mvcc/watchable-store.ts). */
  onCompact?: (revision: number) => void;
  /** Called after restoreFrom rebuilt the store from a replaced backend file. */
  onRestore?: () => void;
  /** Structured logger (etcd's wording for compaction events). */
  log?: StoreLogger;
  /**
   * The key index already rebuilt from the key bucket's records (an import fed it as it
   * copied them): open takes it instead of scanning the backend. It must be built from every
   * record the backend holds (open checks the count).
   */
  restoredIndex?: KeyIndexRestore;
}

export interface StoreLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
}

export interface HashResult {
  hash: number;
  /** The store's current revision when the hash was taken. */
  revision: number;
}

export interface HashKVResult extends HashResult {
  compactRevision: number;
}

/** A write transaction in progress: one main revision, sub revisions per change. */
interface WriteTxn {
  beginRev: number;
  changes: number;
  events: Event[] | undefined;
}

/** The operations of one write transaction (MvccStore.write). */
export interface TxnWrite {
  range(req: RangeRequest): RangeResponse;
  put(req: PutRequest): PutResponse;
  deleteRange(req: DeleteRangeRequest): DeleteRangeResponse;
}

interface RangeResult {
  kvs: KeyValue[];
  count: number;
}

function header(revision: number): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision, raftTerm: 0 };
}

/**
 * Whether `req` reads one key (no range_end) with no revision filter: nothing then needs the
 * key's decoded KeyValue (sorting one key is the identity, a limit cannot cut it, `more` is
 * false), so MvccStore.findKey and recordOf serve it from the stored record.
 */
export function isOneKeyRead(req: RangeRequest): boolean {
  return req.rangeEnd.length === 0 && req.minModRevision === 0 && req.maxModRevision === 0
    && req.minCreateRevision === 0 && req.maxCreateRevision === 0;
}

/** etcd's mkGteRange plus nil: empty range_end is one key; "\0" is every key >= key. */
function rangeEndOf(rangeEnd: Buffer | undefined): RangeEnd {
  if (!rangeEnd || rangeEnd.length === 0) return undefined;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return EMPTY;
  return rangeEnd;
}

function cmpNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Etcd's revision-ordered key-value store over an LMDB backend. */
export class MvccStore {
  readonly backend: Backend;
  private index = new TreeIndex();
  private readonly leaseExists: ((id: bigint) => boolean) | undefined;
  private readonly onKeyLease: MvccStoreOptions['onKeyLease'];
  private readonly batchLimit: number;
  private readonly onChanges: MvccStoreOptions['onChanges'];
  private readonly wantsChanges: () => boolean;
  private readonly onCompact: MvccStoreOptions['onCompact'];
  private readonly onRestore: MvccStoreOptions['onRestore'];
  private readonly log: StoreLogger | undefined;
  /** recordOf's bucket key, written in place per read (the backend keeps no reference to it). */
  private readonly recordKey = Buffer.allocUnsafe(REV_BYTES);
  private currentRev = 1;
  /** Keys live at currentRev (liveKeys()). */
  private liveKeyCount = 0;
  /** etcd's compactMainRev: -1 until the first compaction. */
  private compactMainRev = -1;
  private ci = 0;
  private ciTerm = 0;
  private ciDirty = false;
  /** Physical compactions run one after another (etcd's FIFO scheduler). */
  private compactions: Promise<void> = Promise.resolve();
  /** Physical compactions started and not finished (0 or 1: they run one after another). */
  private compactionsRunning = 0;
  private closed = false;
  private restoredIndex: KeyIndexRestore | undefined;

  private constructor(opts: MvccStoreOptions) {
    this.backend = opts.backend;
    this.leaseExists = opts.leaseExists;
    this.onKeyLease = opts.onKeyLease;
    this.batchLimit = opts.compactionBatchLimit ?? 1000;
    this.onChanges = opts.onChanges;
    this.wantsChanges = opts.wantsChanges ?? (() => true);
    this.onCompact = opts.onCompact;
    this.onRestore = opts.onRestore;
    this.log = opts.log;
    this.restoredIndex = opts.restoredIndex;
    this.backend.onBeforeCommit(() => {
      if (!this.ciDirty) return;
      this.ciDirty = false;
      this.backend.put('meta', META_CONSISTENT_INDEX, u64(this.ci));
      this.backend.put('meta', META_TERM, u64(this.ciTerm));
    });
  }

  /** Opens the store over `backend`, rebuilding the key index and revisions from it. */
  static open(opts: MvccStoreOptions): MvccStore {
    const s = new MvccStore(opts);
    s.restore();
    return s;
  }

  get currentRevision(): number {
    return this.currentRev;
  }

  /** The revision of the last compaction (etcd's compactMainRev; -1 before any). */
  get compactRevision(): number {
    return this.compactMainRev;
  }

  /** Number of keys in the index (live, or deleted but not yet compacted). */
  get keyCount(): number {
    return this.index.size;
  }

  // ------------------------------------------------------------ consistent index

  /** Records the raft entry being applied; persisted with the next backend commit. */
  setConsistentIndex(index: number, term: number): void {
    this.ci = index;
    this.ciTerm = term;
    this.ciDirty = true;
    this.backend.requestCommit();
  }

  /** Index of the last entry applied (as committed, or set since). */
  consistentIndex(): number {
    return this.ci;
  }

  consistentTerm(): number {
    return this.ciTerm;
  }

  /**
   * Once the key index is rebuilt (start-up), the backend's file pages the rebuild mapped are
   * given back (Backend.releaseMappedPages). Not while a resumed compaction reads the file:
   * start-up does not wait for it, and the pages then stay until the next restart.
   */
  async releaseMappedPages(): Promise<void> {
    if (this.compactionsRunning !== 0) return;
    await this.backend.releaseMappedPages();
  }

  // ------------------------------------------------------------ restore

  /**
   * The backend's file is replaced (a leader's snapshot installed): a running compaction
   * finishes first (it must not write into the new file), `swap` replaces the file, then the
   * key index, revisions and consistent index are rebuilt from it (etcd's store Restore).
   */
  async restoreFrom(swap: () => Promise<void>): Promise<void> {
    await this.compactions.catch(() => {});
    await swap();
    this.index = new TreeIndex();
    this.currentRev = 1;
    this.compactMainRev = -1;
    this.ci = 0;
    this.ciTerm = 0;
    this.ciDirty = false;
    this.restore();
    this.onRestore?.();
  }

  private restore(): void {
    const b = this.backend;
    this.ci = storedConsistentIndex(b);
    const term = b.get('meta', META_TERM);
    if (term) this.ciTerm = readU64BE(term);
    const finished = b.get('meta', META_FINISHED_COMPACT);
    if (finished) {
      this.compactMainRev = revMain(finished);
      this.log?.info('restored last compact revision', { 'meta-bucket-name': 'meta', 'meta-bucket-name-key': 'finishedCompactRev', 'restored-compact-revision': this.compactMainRev });
    }
    const scheduledBytes = b.get('meta', META_SCHEDULED_COMPACT);
    let scheduled = scheduledBytes ? revMain(scheduledBytes) : 0;

    const restored = this.takeRestoredIndex() ?? this.scanKeyBucket();
    this.index = restored.index;
    const rev = restored.revision;
    if (this.onKeyLease) for (const [key, lease] of restored.keyLeases) this.onKeyLease(Buffer.from(key, 'latin1'), lease);
    // Compaction may have removed every record up to its revision, finished or not (a crash
    // before the finished mark): the revision never goes below either (etcd #17780).
    this.currentRev = Math.max(rev, this.compactMainRev, scheduled);
    this.liveKeyCount = this.countLiveKeys();
    if (scheduled <= this.compactMainRev) scheduled = 0;
    if (scheduled !== 0) {
      // A compaction was recorded but did not finish: resume it (etcd does the same).
      this.compactMainRev = scheduled;
      this.compactions = this.runCompaction(scheduled);
      this.log?.info('resume scheduled compaction', { 'meta-bucket-name': 'meta', 'meta-bucket-name-key': 'scheduledCompactRev', 'scheduled-compact-revision': scheduled });
    }
  }

  /**
   * The key index from every record of the key bucket. Values are read in place
   * (scanTransient) and only the fields the index needs are taken: copying every value out,
   * as a 1 GiB store's 4 KiB values, made a store's worth of garbage and most of the boot's CPU.
   */
  private scanKeyBucket(): KeyIndexRestore {
    const restored = new KeyIndexRestore();
    for (const [k, v] of this.backend.scanTransient('key')) restored.add(k, v);
    return restored;
  }

  /** The index given to open (once), checked to hold as many records as the key bucket. */
  private takeRestoredIndex(): KeyIndexRestore | undefined {
    const given = this.restoredIndex;
    this.restoredIndex = undefined;
    if (given === undefined) return undefined;
    const stored = this.backend.entryCount('key');
    if (stored !== given.records) throw new Error(`mvcc: the key index given to open was built from ${given.records} records, the key bucket holds ${stored}`);
    return given;
  }

  // ------------------------------------------------------------ reads

  /** Range with every RangeRequest option (apply.go applyRange). The header carries only the revision. */
  range(req: RangeRequest): RangeResponse {
    return this.rangeAt(req, this.currentRev);
  }

  /**
   * Keys live at the current revision (etcd's keysGauge, /metrics' etcd_debugging_mvcc_keys_total),
   * kept by put and delete: counting them per scrape walked the whole key index, 0.4-0.6 s at
   * 262k keys, four scrapes a second kept the member busy.
   */
  liveKeys(): number {
    return this.liveKeyCount;
  }

  /** Walks the key index once (at start-up and after a snapshot's file replaced the backend). */
  private countLiveKeys(): number {
    let n = 0;
    const rev = this.currentRev;
    this.index.visit(FIRST_KEY, TO_THE_END, (ki) => { if (ki.get(rev) !== undefined) n++; });
    return n;
  }

  private rangeAt(r: RangeRequest, curRev: number): RangeResponse {
    let limit = r.limit;
    if (
      r.sortOrder !== RangeRequest_SortOrder.NONE ||
      r.minModRevision !== 0 || r.maxModRevision !== 0 ||
      r.minCreateRevision !== 0 || r.maxCreateRevision !== 0
    ) {
      limit = 0; // fetch everything; sort and truncate afterwards
    }
    if (limit > 0) limit++; // one extra for `more`

    const rr = this.rangeKeys(r.key, rangeEndOf(r.rangeEnd), curRev, r.revision, limit, r.countOnly);
    let kvs = rr.kvs;
    if (r.maxModRevision !== 0) kvs = kvs.filter((kv) => !(kv.modRevision > r.maxModRevision));
    if (r.minModRevision !== 0) kvs = kvs.filter((kv) => !(kv.modRevision < r.minModRevision));
    if (r.maxCreateRevision !== 0) kvs = kvs.filter((kv) => !(kv.createRevision > r.maxCreateRevision));
    if (r.minCreateRevision !== 0) kvs = kvs.filter((kv) => !(kv.createRevision < r.minCreateRevision));

    let sortOrder = r.sortOrder;
    // Results come sorted by key ascending; other targets default to ascending order.
    if (r.sortTarget !== RangeRequest_SortTarget.KEY && sortOrder === RangeRequest_SortOrder.NONE) {
      sortOrder = RangeRequest_SortOrder.ASCEND;
    }
    if (sortOrder === RangeRequest_SortOrder.ASCEND || sortOrder === RangeRequest_SortOrder.DESCEND) {
      let less: (a: KeyValue, b: KeyValue) => number;
      switch (r.sortTarget) {
        case RangeRequest_SortTarget.VERSION: less = (a, b) => cmpNum(a.version, b.version); break;
        case RangeRequest_SortTarget.CREATE: less = (a, b) => cmpNum(a.createRevision, b.createRevision); break;
        case RangeRequest_SortTarget.MOD: less = (a, b) => cmpNum(a.modRevision, b.modRevision); break;
        case RangeRequest_SortTarget.VALUE: less = (a, b) => Buffer.compare(a.value, b.value); break;
        default: less = (a, b) => Buffer.compare(a.key, b.key);
      }
      // Go's sort.Sort, not a stable sort: ties must land where etcd puts them.
      if (sortOrder === RangeRequest_SortOrder.ASCEND) goSort(kvs, (a, b) => less(a, b) < 0);
      else goSort(kvs, (a, b) => less(b, a) < 0);
    }

    let more = false;
    if (r.limit > 0 && kvs.length > r.limit) {
      kvs.length = r.limit;
      more = true;
    }
    if (r.keysOnly) for (const kv of kvs) kv.value = EMPTY;
    return { header: header(curRev), kvs, more, count: rr.count };
  }

  /**
   * The revision a read asking for `atRev` (0 or less: the current one) reads at, as etcd's
   * rangeKeys checks it: a future revision or one compacted away is refused.
   */
  private readRevision(atRev: number, curRev: number): number {
    if (atRev > curRev) throw etcdError('FutureRev');
    const rev = atRev <= 0 ? curRev : atRev;
    if (rev < this.compactMainRev) throw etcdError('Compacted');
    return rev;
  }

  /**
   * A one-key read (isOneKeyRead) without a KeyValue: where `key`'s record as of `atRev` (0:
   * the current revision) is, or undefined when the key does not exist then. Refuses a future
   * or compacted revision as range does. recordOf reads the record.
   */
  findKey(key: Buffer, atRev: number): KeyRevision | undefined {
    return this.index.get(key, this.readRevision(atRev, this.currentRev));
  }

  /**
   * The record findKey found, as the backend holds it: a marshalled mvccpb.KeyValue, the very
   * message RangeResponse.kvs carries. A view of the backend's read buffer, valid only until
   * the next read of the store: use it at once.
   */
  recordOf(r: KeyRevision): Uint8Array {
    const v = this.backend.getTransient('key', writeRevKey(this.recordKey, r.modMain, r.modSub));
    if (!v) throw new Error(`mvcc: range cannot find rev (${r.modMain},${r.modSub})`); // index and backend disagree: crash
    return v;
  }

  /** etcd's storeTxnRead.rangeKeys: revision checks, index lookup, values from the backend. */
  private rangeKeys(key: Buffer, end: RangeEnd, curRev: number, atRev: number, limit: number, countOnly: boolean): RangeResult {
    const rev = this.readRevision(atRev, curRev);
    if (end === undefined) {
      const r = this.index.get(key, rev);
      if (!r) return { kvs: [], count: 0 };
      if (countOnly) return { kvs: [], count: 1 };
      return { kvs: [this.readKv(r.modMain, r.modSub)], count: 1 };
    }
    const { revs } = this.index.range(key, end, rev);
    const count = revs.length;
    if (count === 0 || countOnly) return { kvs: [], count };
    const n = limit <= 0 || limit > count ? count : limit;
    const kvs = new Array<KeyValue>(n);
    for (let i = 0; i < n; i++) kvs[i] = this.readKv(revs[i].modMain, revs[i].modSub);
    return { kvs, count };
  }

  private readKv(main: number, sub: number): KeyValue {
    const v = this.backend.get('key', revKey(main, sub));
    if (!v) throw new Error(`mvcc: range cannot find rev (${main},${sub})`); // index and backend disagree: crash
    return decodeKeyValue(v);
  }

  /** The key's current KeyValue as of `rev`, or undefined. */
  private getKv(key: Buffer, rev: number): KeyValue | undefined {
    const r = this.index.get(key, rev);
    return r ? this.readKv(r.modMain, r.modSub) : undefined;
  }

  // ------------------------------------------------------------ writes

  private begin(): WriteTxn {
    if (this.closed) throw new Error('mvcc: store is closed');
    return { beginRev: this.currentRev, changes: 0, events: this.onChanges && this.wantsChanges() ? [] : undefined };
  }

  /** Revision a read inside the txn sees: its own changes included. */
  private readRev(tw: WriteTxn): number {
    return tw.changes > 0 ? tw.beginRev + 1 : tw.beginRev;
  }

  private end(tw: WriteTxn): void {
    if (tw.changes === 0) return;
    this.currentRev = tw.beginRev + 1;
    if (tw.events && this.onChanges) this.onChanges(tw.events, this.currentRev);
  }

  private doPut(tw: WriteTxn, key: Buffer, value: Buffer, lease: bigint): void {
    const rev = tw.beginRev + 1;
    const ki = this.index.getOrCreate(key);
    const prev = ki.hasHistory() ? ki.get(rev) : undefined;
    if (prev === undefined) this.liveKeyCount++;
    const created = prev ? prev.createdMain : rev;
    const ver = prev ? prev.version + 1 : 1;
    const sub = tw.changes++;
    const bytes = encodeKeyValue(key, value, created, rev, ver, lease);
    this.backend.put('key', revKey(rev, sub), bytes);
    ki.put(rev, sub);
    this.onKeyLease?.(key, lease);
    if (tw.events) tw.events.push({ type: Event_EventType.PUT, kv: decodeKeyValue(bytes), prevKv: undefined });
  }

  private doDeleteRange(tw: WriteTxn, key: Buffer, end: RangeEnd): number {
    const rrev = this.readRev(tw);
    const keys: Buffer[] = [];
    if (end === undefined) {
      if (this.index.get(key, rrev)) keys.push(Buffer.from(key)); // events may outlive the request's buffer
    } else {
      for (const ki of this.index.range(key, end, rrev).keys) keys.push(ki.keyBytes());
    }
    const main = tw.beginRev + 1;
    for (const k of keys) {
      const sub = tw.changes++;
      this.backend.put('key', revKey(main, sub, true), encodeTombstone(k));
      if (!this.index.tombstone(k, main, sub)) throw new Error(`mvcc: cannot tombstone an existing key (${k.toString()})`);
      this.onKeyLease?.(k, 0n);
      if (tw.events) {
        tw.events.push({
          type: Event_EventType.DELETE,
          kv: { key: k, createRevision: 0, modRevision: main, version: 0, value: EMPTY, lease: 0n },
          prevKv: undefined,
        });
      }
    }
    this.liveKeyCount -= keys.length;
    return keys.length;
  }

  /** Put (apply.go Put): lease, prev_kv, ignore_value, ignore_lease. Header carries the new revision. */
  put(req: PutRequest): PutResponse {
    checkPutShape(req);
    if (req.lease !== 0n) this.checkLease(req.lease);
    const tw = this.begin();
    const resp = this.putIn(tw, req);
    this.end(tw);
    return resp;
  }

  /** Throws LeaseNotFound unless lease `id` exists. */
  checkLease(id: bigint): void {
    if (!this.leaseExists || !this.leaseExists(id)) throw etcdError('LeaseNotFound');
  }

  private putIn(tw: WriteTxn, p: PutRequest): PutResponse {
    let prev: KeyValue | undefined;
    if (p.ignoreValue || p.ignoreLease || p.prevKv) prev = this.getKv(p.key, this.readRev(tw));
    if ((p.ignoreValue || p.ignoreLease) && !prev) throw etcdError('KeyNotFound');
    const value = p.ignoreValue ? prev!.value : p.value;
    const lease = p.ignoreLease ? prev!.lease : p.lease;
    this.doPut(tw, p.key, value, lease);
    return { header: header(tw.beginRev + 1), prevKv: p.prevKv ? prev : undefined };
  }

  /** DeleteRange (apply.go DeleteRange): prev_kv and deleted. */
  deleteRange(req: DeleteRangeRequest): DeleteRangeResponse {
    const tw = this.begin();
    const resp = this.deleteIn(tw, req);
    this.end(tw);
    return resp;
  }

  private deleteIn(tw: WriteTxn, dr: DeleteRangeRequest): DeleteRangeResponse {
    const end = rangeEndOf(dr.rangeEnd);
    let prevKvs: KeyValue[] = [];
    if (dr.prevKv) prevKvs = this.rangeKeys(dr.key, end, this.readRev(tw), 0, 0, false).kvs;
    const n = this.doDeleteRange(tw, dr.key, end);
    const rev = n !== 0 || tw.changes > 0 ? tw.beginRev + 1 : tw.beginRev;
    return { header: header(rev), deleted: n, prevKvs };
  }

  // ------------------------------------------------------------ write txns

  /**
   * Runs `fn` as one write transaction (etcd's TxnWrite): every change it makes shares one
   * main revision (numbered by sub revision), and its reads see its own changes. Returns
   * `fn`'s result and the store's revision after it. The txn rules (compares, which branch,
   * what to check first) are the applier's (server/); callers check before they write, so a
   * failure after a change is a broken invariant.
   */
  write<T>(fn: (tx: TxnWrite) => T): { result: T; revision: number } {
    const tw = this.begin();
    const tx: TxnWrite = {
      range: (r) => this.rangeAt(r, this.readRev(tw)),
      put: (p) => this.putIn(tw, p),
      deleteRange: (d) => this.deleteIn(tw, d),
    };
    let result: T;
    try {
      result = fn(tx);
    } catch (e) {
      if (tw.changes > 0) throw new Error(`mvcc: write txn failed after ${tw.changes} changes`, { cause: e });
      throw e;
    }
    this.end(tw);
    return { result, revision: tw.changes > 0 ? tw.beginRev + 1 : tw.beginRev };
  }

  /** The key-values in [key, rangeEnd) as of `rev` (rangeEnd as a RangeRequest's). */
  kvsAt(key: Buffer, rangeEnd: Buffer | undefined, rev: number): KeyValue[] {
    return this.rangeKeys(key, rangeEndOf(rangeEnd), this.currentRev, rev, 0, false).kvs;
  }

  /** Whether `key` exists (is live) as of `rev`. */
  hasKeyAt(key: Buffer, rev: number): boolean {
    return this.index.get(key, rev) !== undefined;
  }

  // ------------------------------------------------------------ compaction

  /**
   * Compacts history below `rev` (etcd's Compact). Throws Compacted (rev <= last compaction)
   * or FutureRev at once; otherwise the revision is recorded now and the physical removal
   * runs in batches of compactionBatchLimit between other work. The promise settles when
   * the removal is done (never rejects; a backend failure there crashes loudly).
   */
  compact(rev: number): Promise<void> {
    if (rev <= this.compactMainRev) throw etcdError('Compacted');
    if (rev > this.currentRev) throw etcdError('FutureRev');
    this.onCompact?.(rev);
    this.compactMainRev = rev;
    this.backend.put('meta', META_SCHEDULED_COMPACT, revKey(rev, 0));
    const job = this.compactions.then(() => this.runCompaction(rev));
    this.compactions = job;
    return job;
  }

  /** Resolves once every compaction scheduled so far has finished. */
  compactionsDone(): Promise<void> {
    return this.compactions;
  }

  private async runCompaction(rev: number): Promise<void> {
    this.compactionsRunning++;
    try {
      await this.removeCompacted(rev);
    } finally {
      this.compactionsRunning--;
    }
  }

  private async removeCompacted(rev: number): Promise<void> {
    const started = Date.now();
    const keep = new Set<string>();
    // Index first, a chunk of keys at a time: ranges at or above rev stay correct throughout.
    let from: string | undefined;
    do {
      from = this.index.compactChunk(rev, from, this.batchLimit, keep);
      if (from) await yieldTurn();
    } while (from && !this.closed);
    // Then the backend, scanning history up to rev in bounded batches (kvstore_compaction.go).
    const end = revKey(rev + 1, 0);
    let last: Buffer = Buffer.alloc(REV_BYTES);
    while (!this.closed) {
      await this.backend.ready();
      if (this.closed) return;
      // One record past the batch tells whether this batch is the last: the finished mark
      // must be written in the same synchronous turn (so the same backend commit) as the
      // last deletions, or a crash between them leaves history gone but no mark.
      let n = 0;
      let next: Buffer | undefined;
      for (const [k] of this.backend.scan('key', { start: last, end, limit: this.batchLimit + 1 })) {
        if (n++ === this.batchLimit) {
          next = k;
          break;
        }
        if (!keep.has(revId(revMain(k), revSub(k)))) this.backend.del('key', k);
      }
      if (next === undefined) {
        this.backend.put('meta', META_FINISHED_COMPACT, revKey(rev, 0));
        this.log?.info('finished scheduled compaction', { 'compact-revision': rev, took: `${Date.now() - started}ms` });
        return;
      }
      last = Buffer.from(next); // a copy: the scan may reuse its key buffer
      await yieldTurn();
    }
  }

  // ------------------------------------------------------------ hashes

  /** etcd's Hash: CRC-32C over every bucket (names sorted, as bbolt walks them), skipping the consistent index. */
  hash(): HashResult {
    let h = 0;
    for (const name of [...DB_NAMES].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
      h = crc32c(Buffer.from(name), h);
      for (const [k, v] of this.backend.scan(name)) {
        if (name === 'meta' && (k.equals(META_CONSISTENT_INDEX) || k.equals(META_TERM))) continue;
        h = crc32c(k, h);
        h = crc32c(v, h);
      }
    }
    return { hash: h >>> 0, revision: this.currentRev };
  }

  /**
   * etcd's HashByRev: CRC-32C over the key bucket's records up to `rev` (0: current),
   * leaving out history a compaction at `rev` would remove. Compacted if rev <= the
   * compaction revision, FutureRev if beyond the current one.
   */
  hashKV(rev: number): HashKVResult {
    const compactRev = this.compactMainRev;
    const currentRev = this.currentRev;
    if (rev > 0 && rev <= compactRev) throw etcdError('Compacted');
    if (rev > 0 && rev > currentRev) throw etcdError('FutureRev');
    if (rev === 0) rev = currentRev;
    const keep = this.index.keep(rev);
    let h = crc32c(KEY_BUCKET_NAME);
    for (const [k, v] of this.backend.scan('key')) {
      const main = revMain(k);
      if (main > rev) break; // upper = {rev+1, 0} > k; keys are in revision order
      if (main <= compactRev && keep.size > 0 && !keep.has(revId(main, revSub(k)))) continue;
      h = crc32c(k, h);
      h = crc32c(v, h);
    }
    return { hash: h >>> 0, revision: currentRev, compactRevision: compactRev };
  }

  /** Commits every write so far to LMDB (etcd's ForceCommit); resolves when it is there. */
  forceCommit(): Promise<void> {
    return this.backend.forceCommit();
  }

  /** Commits pending writes and closes the backend. Running compaction stops at its next step. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.compactions.catch(() => {});
    await this.backend.close();
  }
}

/**
 * The consistent index the backend holds (0 if none): the last raft entry whose effects it
 * contains. Readable before the store is opened, so start-up can check the backend against
 * the snapshot before anything (a resumed compaction) writes to it.
 */
export function storedConsistentIndex(backend: Backend): number {
  const ci = backend.get('meta', META_CONSISTENT_INDEX);
  return ci ? readU64BE(ci) : 0;
}

function yieldTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** etcd's v3rpc checkPutRequest parts that concern the flags (key.go). */
export function checkPutShape(p: PutRequest): void {
  if (p.ignoreValue && p.value.length !== 0) throw etcdError('ValueProvided');
  if (p.ignoreLease && p.lease !== 0n) throw etcdError('LeaseProvided');
}
