// The watchable store: etcd's mvcc/watchable_store.go and watcher.go in Node's single thread.
//
// Every watcher is in exactly one state:
//   synced    it has every event up to the store's current revision; new revisions are handed
//             to it as they are written (notify), looked up by key through a WatcherGroup.
//   unsynced  it is behind (a past start revision, or it fell behind); a sync round reads the
//             history it misses from the backend, in bounded batches, and moves it to synced
//             once it has caught up.
//   victim    its stream's send queue was full when a revision was handed to it: the batch is
//             parked with it and retried when the stream drains (then it becomes unsynced or
//             synced). It gets no live events meanwhile, so memory does not grow with the
//             write rate: a slow stream costs one parked batch per watcher, and its watchers
//             catch up from history (no gap, no duplicate: minRev says what is delivered).
//   compacted it started below the compaction revision; it got compact_revision and is done.
//
// Each client stream (WatchStream) has one bounded send queue (count and bytes). Nothing here
// ever blocks or awaits on a client: a full queue only changes watcher states, so one slow
// stream never stalls the writer or other streams.
//
// Compaction: a compaction at revision C removes the tombstones at C itself, yet a watcher at
// C must still see those deletes (etcd #18089/#19179). The store's onCompact hook lets us copy
// revision C's events before anything is removed; history reads at C use that copy. (The copy
// lives in memory: a restart forgets it, as etcd 3.4 forgets those tombstones.)

import type { Event, KeyValue } from '../proto/index.js';
import { Event_EventType } from '../proto/index.js';
import type { RangeRequest } from '../proto/index.js';
import { decodeKey, decodeKeyValue } from './kvcodec.js';
import { isTombstoneKey, revKey, revMain } from './revision.js';
import { MvccStore, type MvccStoreOptions } from './store.js';
import { WatcherGroup, watchShape, type Watcher } from './watcher-group.js';
import { defaultFanoutRunBounds, mergeFanouts, revisionsIn, type FanoutRunBounds } from './fanout-merge.js';

/** Bounds of one stream's send queue. */
export interface WatchStreamBounds {
  /** Responses a stream may hold unsent (etcd's chanBufLen is 128; ours also bounds bytes). */
  maxQueuedResponses: number;
  /**
   * Estimated bytes a stream may hold unsent (a single larger response is still let through
   * alone): a fan-out's events once, as they are held once, plus queuedIdBytes per watcher.
   */
  maxQueuedBytes: number;
}

/**
 * 65,536 responses (512 KiB of queued ids) or 8 MiB. The count lets a stream with a thousand
 * watchers on a key hold dozens of revisions while its sender is behind, so they go out
 * merged (fanout-merge.ts) rather than through the victim path and history reads.
 */
export const defaultWatchStreamBounds: WatchStreamBounds = { maxQueuedResponses: 65536, maxQueuedBytes: 8 * 1024 * 1024 };

export interface WatchableOptions {
  /** Unsynced watchers caught up per sync round (etcd's maxWatchersPerSync). */
  maxWatchersPerSync?: number;
  /** History records read per sync round; a round always ends on a revision boundary. */
  maxEventsPerSync?: number;
}

/** What a stream's queue delivers (etcd's mvcc.WatchResponse, split by meaning). */
export type WatchReply =
  | { readonly kind: 'events'; readonly watchId: number; readonly events: readonly Event[]; readonly revision: number }
  | { readonly kind: 'compacted'; readonly watchId: number; readonly compactRevision: number }
  /** watchId -1: stream-wide (every watcher of the stream is synced up to `revision`). */
  | { readonly kind: 'progress'; readonly watchId: number; readonly revision: number };

/** A queue item: a watch reply, or a control message of the layer above, kept in order with them. */
export type Queued<C> = WatchReply | { readonly kind: 'control'; readonly control: C };

/**
 * Consecutive events replies of one stream that carry the same events array at the same
 * revision (one revision's fan-out to the stream's watchers of a key): one queue item
 * holding the watcher ids in order, so a fan-out costs an id per watcher, not an object,
 * and the layer above encodes the events once for the lot.
 */
export interface Fanout {
  readonly kind: 'fanout';
  readonly events: readonly Event[];
  readonly revision: number;
  /** The watchers it goes to, in queue order; each counts as one response in the bounds. */
  readonly watchIds: number[];
  /** Estimated bytes of one response (eventsReplyBytes): counted once per fan-out in the byte bound, queuedIdBytes per further watcher. */
  readonly bytesEach: number;
}

/** What WatchStream.nextItem() hands out: events replies come as fan-outs. */
export type QueuedItem<C> = Exclude<Queued<C>, { kind: 'events' }> | Fanout;

export interface WatchRequest {
  /** 0 (etcd's AutoWatchID): the stream picks the next free id. */
  id: number;
  key: Buffer;
  /** undefined: one key; empty: every key >= key; otherwise the exclusive end. */
  end: Buffer | undefined;
  /** First revision wanted; 0 = the next one. */
  startRevision: number;
  filterPut: boolean;
  filterDelete: boolean;
}

/** etcd's mvcc watcher errors (their text is the cancel_reason clients see). */
export const watchErrors = {
  emptyRange: 'mvcc: watcher range is empty',
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
} as const;

export type WatchResult = { ok: true; id: number } | { ok: false; reason: string };

type WatcherState = 'synced' | 'unsynced' | 'victim' | 'compacted' | 'canceled';

interface StoreWatcher extends Watcher {
  readonly stream: WatchStream<unknown>;
  state: WatcherState;
}

/** A batch parked with a victim until its stream has room. */
interface Victim {
  readonly events: readonly Event[];
  readonly revision: number;
  /** minRev once the batch is delivered. */
  readonly nextMinRev: number;
}

const EMPTY = Buffer.alloc(0);
/** Bytes counted per event on top of its key and value (revisions, framing). */
const eventOverheadBytes = 48;
const replyOverheadBytes = 64;
/** What one more watcher adds to a queued fan-out: its id in the array (the events are shared). */
const queuedIdBytes = 8;

/** Estimated bytes of one events reply (what the stream's byte bound counts). */
function eventsReplyBytes(events: readonly Event[]): number {
  let n = replyOverheadBytes;
  for (const e of events) n += e.kv!.key.length + e.kv!.value.length + eventOverheadBytes;
  return n;
}

/** An MvccStore whose writes are streamed to watchers. */
export class WatchableStore {
  readonly kv: MvccStore;
  private readonly synced = new WatcherGroup<StoreWatcher>();
  private readonly unsynced = new WatcherGroup<StoreWatcher>();
  /** Victims in the order they were parked (retried in that order), each with its batch. */
  private readonly victims = new Map<StoreWatcher, Victim>();
  private readonly maxWatchersPerSync: number;
  private readonly maxEventsPerSync: number;
  /** Events of the last compaction revision, copied before the compaction removed any (see header). */
  private compactedRevEvents: { revision: number; events: Event[] } | undefined;
  private syncScheduled = false;
  /** Streams waiting for a stream-wide progress response. */
  private readonly progressWaiters = new Set<WatchStream<unknown>>();
  private readonly scratch: StoreWatcher[] = [];

  private constructor(opts: WatchableOptions) {
    this.maxWatchersPerSync = opts.maxWatchersPerSync ?? 512;
    this.maxEventsPerSync = opts.maxEventsPerSync ?? 1000;
    // Assigned by open(); the store's hooks call back into this object.
    this.kv = undefined as unknown as MvccStore;
  }

  /** Opens the MVCC store with its write and compaction hooks bound to a new watchable layer. */
  static open(opts: MvccStoreOptions & WatchableOptions): WatchableStore {
    const ws = new WatchableStore(opts);
    (ws as { kv: MvccStore }).kv = MvccStore.open({
      ...opts,
      onChanges: (events, rev) => ws.notify(events, rev),
      // notify() hands events to synced watchers only: with none, a write need not build them.
      wantsChanges: () => ws.synced.size !== 0,
      onCompact: (rev) => ws.beforeCompact(rev),
      onRestore: () => ws.afterRestore(),
    });
    return ws;
  }

  /** A new client stream with its own bounded send queue. */
  newWatchStream<C>(bounds: WatchStreamBounds = defaultWatchStreamBounds): WatchStream<C> {
    return new WatchStream<C>(this, bounds);
  }

  /** Watchers per state (tests, metrics). */
  get counts(): { synced: number; unsynced: number; victims: number } {
    return { synced: this.synced.size, unsynced: this.unsynced.size, victims: this.victims.size };
  }

  /** Resolves when the backend may be read (no defragmentation swapping files). */
  ready(): Promise<void> {
    return this.kv.backend.ready();
  }

  /** The key's value just before `modRevision` (etcd's sendLoop prev_kv lookup); undefined if absent or compacted. */
  prevKv(key: Buffer, modRevision: number): KeyValue | undefined {
    const req: RangeRequest = {
      key, rangeEnd: EMPTY, limit: 0, revision: modRevision - 1, sortOrder: 0, sortTarget: 0, serializable: true,
      keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
    };
    try {
      return this.kv.range(req).kvs[0];
    } catch {
      return undefined; // compacted meanwhile: etcd sends no prev_kv then
    }
  }

  // ------------------------------------------------------------ watcher lifecycle (WatchStream)

  /** @internal etcd's watchableStore.watch: synced if it starts after the current revision. */
  addWatcher(stream: WatchStream<unknown>, id: number, req: WatchRequest): StoreWatcher {
    const cur = this.kv.currentRevision;
    const isSynced = req.startRevision > cur || req.startRevision === 0;
    const { shape, indexKey } = watchShape(req.key, req.end);
    const w: StoreWatcher = {
      id, key: req.key, end: req.end, shape, indexKey, filterPut: req.filterPut, filterDelete: req.filterDelete,
      minRev: isSynced ? Math.max(cur + 1, req.startRevision) : req.startRevision,
      stream, state: isSynced ? 'synced' : 'unsynced',
    };
    if (isSynced) this.synced.add(w);
    else {
      this.unsynced.add(w);
      this.scheduleSync();
    }
    return w;
  }

  /** @internal */
  removeWatcher(w: StoreWatcher): void {
    if (w.state === 'synced') this.synced.delete(w);
    else if (w.state === 'unsynced') this.unsynced.delete(w);
    else if (w.state === 'victim') this.victims.delete(w);
    w.state = 'canceled';
  }

  /** @internal etcd's progress: a synced watcher learns the current revision. */
  progress(w: StoreWatcher): void {
    if (w.state === 'synced') w.stream.trySend({ kind: 'progress', watchId: w.id, revision: this.kv.currentRevision });
  }

  /** @internal etcd 3.5's progressAll: answered once every watcher of the stream is synced. */
  progressAll(stream: WatchStream<unknown>): void {
    this.progressWaiters.add(stream);
    this.answerProgressWaiters();
  }

  /** @internal a stream's queue has room again. */
  kick(): void {
    this.scheduleSync();
  }

  // ------------------------------------------------------------ live path (store hook)

  /** The store was rebuilt from another file: every synced watcher catches up from its revision (etcd's Restore). */
  private afterRestore(): void {
    for (const w of [...this.synced.all]) {
      this.synced.delete(w);
      w.state = 'unsynced';
      this.unsynced.add(w);
    }
    if (this.unsynced.size > 0) this.scheduleSync();
  }

  /** Hands one revision's events to the synced watchers that watch their keys. */
  private notify(events: Event[], rev: number): void {
    if (this.synced.size === 0) return;
    if (events.length === 1) {
      const ws = this.scratch;
      this.synced.forEachWatching(events[0].kv!.key, (w) => { ws.push(w); });
      for (const w of ws) if (rev >= w.minRev) this.deliverLive(w, events, rev);
      ws.length = 0;
      return;
    }
    const batches = new Map<StoreWatcher, Event[]>();
    for (const ev of events) {
      this.synced.forEachWatching(ev.kv!.key, (w) => {
        if (rev < w.minRev) return;
        const b = batches.get(w);
        if (b === undefined) batches.set(w, [ev]);
        else b.push(ev);
      });
    }
    for (const [w, evs] of batches) this.deliverLive(w, evs, rev);
  }

  private deliverLive(w: StoreWatcher, events: readonly Event[], rev: number): void {
    if (this.deliver(w, events, rev)) {
      w.minRev = rev + 1;
      return;
    }
    this.synced.delete(w);
    w.state = 'victim';
    this.victims.set(w, { events, revision: rev, nextMinRev: rev + 1 });
  }

  /** Sends the events `w` wants (filters applied); false if its stream's queue is full. */
  private deliver(w: StoreWatcher, events: readonly Event[], revision: number): boolean {
    let evs = events;
    if (w.filterPut || w.filterDelete) {
      evs = events.filter((e) => (e.type === Event_EventType.PUT ? !w.filterPut : !w.filterDelete));
      if (evs.length === 0) return true;
    }
    return w.stream.trySendEvents(w.id, evs, revision);
  }

  // ------------------------------------------------------------ compaction hook

  private beforeCompact(rev: number): void {
    const events: Event[] = [];
    for (const [k, v] of this.kv.backend.scan('key', { start: revKey(rev, 0), end: revKey(rev + 1, 0) })) events.push(recordToEvent(k, v));
    this.compactedRevEvents = { revision: rev, events };
  }

  // ------------------------------------------------------------ sync (catch-up from history)

  private scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      void this.ready().then(() => {
        this.syncScheduled = false;
        if (this.syncRound()) this.scheduleSync();
      });
    });
  }

  /** One round: victims first, then up to maxWatchersPerSync unsynced watchers. True if more work can run now. */
  private syncRound(): boolean {
    this.retryVictims();
    const cur = this.kv.currentRevision;
    const compactRev = this.kv.compactRevision;
    const chosen: StoreWatcher[] = [];
    let minRev = Infinity;
    for (const w of this.unsynced.all) {
      if (chosen.length >= this.maxWatchersPerSync) break;
      if (!w.stream.hasRoom()) continue;
      if (w.minRev < compactRev) {
        if (w.stream.trySend({ kind: 'compacted', watchId: w.id, compactRevision: compactRev })) {
          this.unsynced.delete(w);
          w.state = 'compacted';
        }
        continue;
      }
      if (w.minRev > cur) {
        this.setSynced(w);
        continue;
      }
      chosen.push(w);
      if (w.minRev < minRev) minRev = w.minRev;
    }
    if (chosen.length === 0) {
      this.answerProgressWaiters();
      return false;
    }
    const { events, lastRev } = this.readHistory(minRev, cur);
    const batchOf = historyBatches(chosen, events);
    for (const w of chosen) {
      this.unsynced.delete(w);
      const evs = batchOf(w);
      if (evs !== undefined && !this.deliver(w, evs, cur)) {
        w.state = 'victim';
        this.victims.set(w, { events: evs, revision: cur, nextMinRev: Math.max(w.minRev, lastRev + 1) });
        continue;
      }
      // A watcher further ahead than this round read keeps its place (never moves back).
      w.minRev = Math.max(w.minRev, lastRev + 1);
      if (w.minRev > cur) this.setSynced(w);
      else this.unsynced.add(w); // to the back of the line: round-robin among the behind
    }
    this.answerProgressWaiters();
    // Progress was made; go on while anyone is behind (a round with nobody to serve stops:
    // a draining stream kicks us again).
    return this.unsynced.size > 0 || this.victims.size > 0;
  }

  private retryVictims(): void {
    if (this.victims.size === 0) return;
    const cur = this.kv.currentRevision;
    for (const [w, v] of this.victims) {
      if (!w.stream.hasRoom() || !this.deliver(w, v.events, v.revision)) continue;
      this.victims.delete(w);
      w.minRev = v.nextMinRev;
      if (w.minRev > cur) this.setSynced(w);
      else {
        w.state = 'unsynced';
        this.unsynced.add(w);
      }
    }
  }

  private setSynced(w: StoreWatcher): void {
    this.unsynced.delete(w);
    w.state = 'synced';
    this.synced.add(w);
  }

  /**
   * Events from revision `from` on, up to `to`, at most maxEventsPerSync records but never
   * splitting a revision. `lastRev` is the last revision wholly read.
   */
  private readHistory(from: number, to: number): { events: Event[]; lastRev: number } {
    const events: Event[] = [];
    const compacted = this.compactedRevEvents;
    let start = from;
    if (compacted !== undefined && from === compacted.revision) {
      // The backend may already have lost this revision's tombstones: use the copy.
      for (const e of compacted.events) events.push(e);
      start = from + 1;
    }
    let lastRev = start - 1;
    for (const [k, v] of this.kv.backend.scan('key', { start: revKey(start, 0), end: revKey(to + 1, 0) })) {
      const main = revMain(k);
      if (main !== lastRev && events.length >= this.maxEventsPerSync) return { events, lastRev };
      lastRev = main;
      events.push(recordToEvent(k, v));
    }
    return { events, lastRev: to };
  }

  private answerProgressWaiters(): void {
    if (this.progressWaiters.size === 0) return;
    for (const s of this.progressWaiters) {
      if (!s.allSynced() || !s.hasRoom()) continue;
      this.progressWaiters.delete(s);
      s.trySend({ kind: 'progress', watchId: -1, revision: this.kv.currentRevision });
    }
  }

  /** @internal */
  forgetStream(s: WatchStream<unknown>): void {
    this.progressWaiters.delete(s);
  }
}

/**
 * Each watcher's events among `events` (history in revision order): those in its range from
 * its minRev on; undefined if none. Watchers of the same range at the same minRev (a fan-out
 * that fell behind together) share one array, so the layer above encodes it once for all.
 */
function historyBatches(watchers: readonly StoreWatcher[], events: readonly Event[]): (w: StoreWatcher) => Event[] | undefined {
  const representatives = new Map<string, StoreWatcher>();
  const representativeOf = new Map<StoreWatcher, StoreWatcher>();
  const group = new WatcherGroup<StoreWatcher>();
  for (const w of watchers) {
    const sameBatch = `${w.minRev}:${w.shape}:${w.indexKey}`;
    let rep = representatives.get(sameBatch);
    if (rep === undefined) {
      rep = w;
      representatives.set(sameBatch, w);
      group.add(w);
    }
    representativeOf.set(w, rep);
  }
  const batches = new Map<StoreWatcher, Event[]>();
  for (const ev of events) {
    group.forEachWatching(ev.kv!.key, (w) => {
      if (ev.kv!.modRevision < w.minRev) return;
      const b = batches.get(w);
      if (b === undefined) batches.set(w, [ev]);
      else b.push(ev);
    });
  }
  return (w) => batches.get(representativeOf.get(w)!);
}

/** A key-bucket record as etcd's kvsToEvents reads it: a put, or a delete (tombstone: key and mod revision only). */
function recordToEvent(k: Buffer, v: Buffer): Event {
  if (isTombstoneKey(k)) {
    return {
      type: Event_EventType.DELETE,
      kv: { key: decodeKey(v), createRevision: 0, modRevision: revMain(k), version: 0, value: EMPTY, lease: 0n },
      prevKv: undefined,
    };
  }
  return { type: Event_EventType.PUT, kv: decodeKeyValue(v), prevKv: undefined };
}

/** What `count` responses of fan-out `f` from its `from`th watcher on count in the byte bound (the first carries the events). */
function fanoutBytes(f: Fanout, from: number, count: number): number {
  return from === 0 ? f.bytesEach + (count - 1) * queuedIdBytes : count * queuedIdBytes;
}

/**
 * One client's watch stream (etcd's mvcc.watchStream): its watchers by id and one bounded
 * send queue shared by their replies and by the layer above's control messages (type C),
 * so everything reaches the client in the order it was decided.
 */
export class WatchStream<C> {
  private readonly watchers = new Map<number, StoreWatcher>();
  private nextId = 0;
  private queue: Array<QueuedItem<C>> = [];
  private head = 0;
  /** How far next() got into the head item when that is a fan-out. */
  private headRunAt = 0;
  /** Responses queued (a fan-out counts one per watcher): what maxQueuedResponses bounds. */
  private queuedResponses = 0;
  private queuedBytes = 0;
  /** A send was refused for lack of room: kick the store once there is room again. */
  private starved = false;
  private wakeReader: (() => void) | undefined;
  private closed = false;

  /** @internal use WatchableStore.newWatchStream */
  constructor(private readonly store: WatchableStore, readonly bounds: WatchStreamBounds) {}

  /** The store's current revision. */
  get rev(): number {
    return this.store.kv.currentRevision;
  }

  get size(): number {
    return this.watchers.size;
  }

  /** etcd's watchStream.Watch: the watcher's id, or the reason it was refused. */
  watch(req: WatchRequest): WatchResult {
    if (this.closed) return { ok: false, reason: watchErrors.emptyRange };
    if (req.end !== undefined && req.end.length !== 0 && Buffer.compare(req.key, req.end) >= 0) {
      return { ok: false, reason: watchErrors.emptyRange };
    }
    let id = req.id;
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      return { ok: false, reason: watchErrors.duplicateId };
    }
    this.watchers.set(id, this.store.addWatcher(this as WatchStream<unknown>, id, req));
    return { ok: true, id };
  }

  /** Cancels a watcher; false if the stream has no such id. */
  cancel(id: number): boolean {
    const w = this.watchers.get(id);
    if (w === undefined) return false;
    this.watchers.delete(id);
    this.store.removeWatcher(w);
    return true;
  }

  /** A progress reply for one watcher, if it is synced and there is room (etcd's RequestProgress). */
  requestProgress(id: number): void {
    const w = this.watchers.get(id);
    if (w !== undefined) this.store.progress(w);
  }

  /** A stream-wide progress reply (watch_id -1), sent once every watcher of the stream is synced. */
  requestProgressAll(): void {
    this.store.progressAll(this as WatchStream<unknown>);
  }

  /** @internal */
  allSynced(): boolean {
    for (const w of this.watchers.values()) if (w.state === 'unsynced' || w.state === 'victim') return false;
    return true;
  }

  /** True if the queue takes another reply of ordinary size. */
  hasRoom(): boolean {
    const room = this.queuedResponses < this.bounds.maxQueuedResponses && this.queuedBytes < this.bounds.maxQueuedBytes;
    if (!room) this.starved = true;
    return room;
  }

  /** True if a reply of `bytes` fits (an empty queue takes anything); else marks the stream starved. */
  private fits(bytes: number): boolean {
    const n = this.queuedResponses;
    if (n > 0 && (n >= this.bounds.maxQueuedResponses || this.queuedBytes + bytes > this.bounds.maxQueuedBytes)) {
      this.starved = true;
      return false;
    }
    return true;
  }

  /** @internal Queues a compacted or progress reply if it fits. */
  trySend(r: Exclude<WatchReply, { kind: 'events' }>): boolean {
    if (this.closed) return true; // a closed stream swallows: its watchers are gone with it
    if (!this.fits(replyOverheadBytes)) return false;
    this.push(r, replyOverheadBytes);
    return true;
  }

  /**
   * @internal Queues watcher `watchId`'s events at `revision` if they fit. Joins the fan-out
   * at the tail of the queue when it carries the same events array at the same revision.
   */
  trySendEvents(watchId: number, events: readonly Event[], revision: number): boolean {
    if (this.closed) return true;
    const tail = this.queue.length > this.head ? this.queue[this.queue.length - 1] : undefined;
    if (tail !== undefined && tail.kind === 'fanout' && tail.events === events && tail.revision === revision) {
      if (!this.fits(queuedIdBytes)) return false;
      tail.watchIds.push(watchId);
      this.queuedResponses++;
      this.queuedBytes += queuedIdBytes;
      return true; // the reader was woken by the fan-out's first reply
    }
    const bytes = eventsReplyBytes(events);
    if (!this.fits(bytes)) return false;
    this.push({ kind: 'fanout', events, revision, watchIds: [watchId], bytesEach: bytes }, bytes);
    return true;
  }

  /**
   * Queues a control message of the layer above. Always accepted: the caller bounds them by
   * not reading more client requests while hasRoom() is false.
   */
  pushControl(control: C): void {
    if (!this.closed) this.push({ kind: 'control', control }, replyOverheadBytes);
  }

  private push(r: QueuedItem<C>, bytes: number): void {
    this.queue.push(r);
    this.queuedResponses++;
    this.queuedBytes += bytes;
    const w = this.wakeReader;
    if (w !== undefined) { this.wakeReader = undefined; w(); }
  }

  /**
   * The next queued item, or undefined if the queue is empty: a fan-out whole (the stream's
   * sender encodes it once for all its watchers).
   */
  nextItem(): QueuedItem<C> | undefined {
    if (this.head === this.queue.length) return undefined;
    let r = this.queue[this.head];
    const taken = this.headRunAt;
    if (r.kind === 'fanout' && taken > 0) r = { ...r, watchIds: r.watchIds.slice(taken) }; // next() took some
    this.dropHead();
    if (r.kind === 'fanout') this.consumed(r.watchIds.length, fanoutBytes(r, taken, r.watchIds.length));
    else this.consumed(1, replyOverheadBytes);
    return r;
  }

  /**
   * The fan-outs at the head of the queue, taken off it and merged into one response per
   * watcher (fanout-merge.ts): what the watch service sends when the stream fell behind. Empty
   * if the head is not a fan-out; a single fan-out comes back as it is (a stream that keeps up
   * sends each revision at once).
   */
  nextMergedFanouts(bounds: FanoutRunBounds = defaultFanoutRunBounds): Fanout[] {
    const run = this.nextFanoutRun(bounds);
    return run.length <= 1 ? run : mergeFanouts(run);
  }

  /**
   * The run of fan-outs at the head of the queue, taken off it: at least the first (if the
   * head is one), then each following fan-out while the run stays within `bounds` (its
   * revisions, and one watcher's share of its bytes). Stops at anything else: a control,
   * progress or compacted item keeps its place after the events queued before it.
   */
  nextFanoutRun(bounds: FanoutRunBounds): Fanout[] {
    const run: Fanout[] = [];
    let revisions = 0;
    let bytes = 0;
    while (this.head < this.queue.length) {
      const r = this.queue[this.head];
      if (r.kind !== 'fanout') break;
      const revs = r.events.length === 1 ? 1 : revisionsIn(r.events);
      if (run.length > 0 && (revisions + revs > bounds.maxRevisions || bytes + r.bytesEach > bounds.maxBytes)) break;
      revisions += revs;
      bytes += r.bytesEach;
      run.push(this.nextItem() as Fanout);
    }
    return run;
  }

  /** The next queued reply, one per watcher (a fan-out is handed out id by id), or undefined if the queue is empty. */
  next(): Queued<C> | undefined {
    if (this.head === this.queue.length) return undefined;
    const r = this.queue[this.head];
    if (r.kind !== 'fanout') {
      this.dropHead();
      this.consumed(1, replyOverheadBytes);
      return r;
    }
    const at = this.headRunAt++;
    const watchId = r.watchIds[at];
    if (this.headRunAt === r.watchIds.length) this.dropHead();
    this.consumed(1, fanoutBytes(r, at, 1));
    return { kind: 'events', watchId, events: r.events, revision: r.revision };
  }

  private dropHead(): void {
    this.queue[this.head++] = undefined as unknown as QueuedItem<C>;
    this.headRunAt = 0;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Accounts for replies taken off the queue; kicks the store once a starved stream is half empty. */
  private consumed(responses: number, bytes: number): void {
    this.queuedResponses -= responses;
    this.queuedBytes -= bytes;
    if (this.starved && this.queuedResponses <= this.bounds.maxQueuedResponses >> 1 && this.queuedBytes <= this.bounds.maxQueuedBytes >> 1) {
      this.starved = false;
      this.store.kick();
    }
  }

  /** Resolves when the queue has an item (at once if it has one now) or the stream is closed. */
  readable(): Promise<void> {
    if (this.head < this.queue.length || this.closed) return Promise.resolve();
    return new Promise((resolve) => { this.wakeReader = resolve; });
  }

  /** Cancels every watcher and drops the queue. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers.values()) this.store.removeWatcher(w);
    this.watchers.clear();
    this.store.forgetStream(this as WatchStream<unknown>);
    this.queue = [];
    this.head = 0;
    this.headRunAt = 0;
    this.queuedResponses = 0;
    this.queuedBytes = 0;
    const w = this.wakeReader;
    if (w !== undefined) { this.wakeReader = undefined; w(); }
  }
}
