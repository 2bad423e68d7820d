// The watchable store: etcd's mvcc/watchable_store.go and watcher.go in Node's single thread.
//
// Every watcher is in exactly one state:
//   synced    it has every event up to the store's current revision; new revisions are handed
//             to it as they are written (notify). Synced watchers of one stream with the same
//             range and filters form a cohort, looked up by key through a WatcherGroup: a
//             revision is handed to a cohort at once (one queue item whose id array the cohort
//             shares across revisions), so a write costs per stream, not per watcher.
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
import { WatcherGroup, watchShape, type WatchedRange, type Watcher } from './watcher-group.js';
import { defaultFanoutRunBounds, mergeFanouts, revisionsIn, type Fanout, type FanoutRunBounds } from './fanout-merge.js';

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
  /** Its cohort while synced (its own minRev is then the one it joined with). */
  cohort: Cohort | undefined;
}

/**
 * Synced watchers of one stream with the same range and filters, handed each revision
 * together: one fan-out item whose ids array is `ids`, the same array revision after revision
 * until a member joins or leaves (so merging queued revisions finds it unchanged at once).
 */
interface Cohort extends WatchedRange {
  readonly stream: WatchStream<unknown>;
  readonly filterPut: boolean;
  readonly filterDelete: boolean;
  /** The next revision the members must receive: everything in range below it was delivered. */
  minRev: number;
  /** In the order they joined (the order of their responses in a fan-out). */
  readonly members: Set<StoreWatcher>;
  /** The members' ids, frozen; undefined after a change until the next revision rebuilds it. */
  ids: readonly number[] | undefined;
  /** Its key in the stream's cohorts; undefined for a watcher waiting for a future start revision (alone in its cohort). */
  readonly joinKey: string | undefined;
}

/** Which cohort of its stream a watcher joins: same range, same filters. */
function cohortKey(w: StoreWatcher): string {
  return `${w.shape}:${w.filterPut ? 1 : 0}${w.filterDelete ? 1 : 0}:${w.indexKey}`;
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
  /** Synced watchers, by cohort. */
  private readonly synced = new WatcherGroup<Cohort>();
  private syncedWatchers = 0;
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
  private readonly scratch: Cohort[] = [];

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
    return { synced: this.syncedWatchers, unsynced: this.unsynced.size, victims: this.victims.size };
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
      stream, state: 'unsynced', cohort: undefined,
    };
    if (isSynced) this.addSynced(w);
    else {
      this.unsynced.add(w);
      this.scheduleSync();
    }
    return w;
  }

  /** @internal */
  removeWatcher(w: StoreWatcher): void {
    if (w.state === 'synced') this.leaveCohort(w);
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
    const members: StoreWatcher[] = [];
    for (const c of this.synced.all) for (const w of c.members) members.push(w);
    for (const w of members) {
      this.leaveCohort(w);
      w.state = 'unsynced';
      this.unsynced.add(w);
    }
    if (this.unsynced.size > 0) this.scheduleSync();
  }

  /** Hands one revision's events to the synced cohorts that watch their keys. */
  private notify(events: Event[], rev: number): void {
    if (this.synced.size === 0) return;
    if (events.length === 1) {
      const cs = this.scratch; // delivering may change the group: collect first
      this.synced.forEachWatching(events[0].kv!.key, (c) => { cs.push(c); });
      for (const c of cs) if (rev >= c.minRev) this.deliverLive(c, events, rev);
      cs.length = 0;
      return;
    }
    const batches = new Map<Cohort, Event[]>();
    for (const ev of events) {
      this.synced.forEachWatching(ev.kv!.key, (c) => {
        if (rev < c.minRev) return;
        const b = batches.get(c);
        if (b === undefined) batches.set(c, [ev]);
        else b.push(ev);
      });
    }
    for (const [c, evs] of batches) this.deliverLive(c, evs, rev);
  }

  /**
   * Queues a revision for a whole cohort; if its stream has no room for all of them, for each
   * member in turn, and those that do not fit leave it as victims with the revision parked.
   */
  private deliverLive(c: Cohort, events: readonly Event[], rev: number): void {
    const evs = filtered(c, events);
    if (evs !== undefined && !c.stream.trySendFanout(c.ids ??= Object.freeze(Array.from(c.members, (w) => w.id)), evs, rev)) {
      for (const w of [...c.members]) {
        if (c.stream.trySendEvents(w.id, evs, rev)) continue;
        this.leaveCohort(w);
        w.state = 'victim';
        this.victims.set(w, { events, revision: rev, nextMinRev: rev + 1 });
      }
    }
    c.minRev = rev + 1;
  }

  /** Sends the events `w` wants (filters applied); false if its stream's queue is full. */
  private deliver(w: StoreWatcher, events: readonly Event[], revision: number): boolean {
    const evs = filtered(w, events);
    return evs === undefined || w.stream.trySendEvents(w.id, evs, revision);
  }

  /** Makes `w` synced: it joins its stream's cohort for its range and filters (a new one if none). */
  private addSynced(w: StoreWatcher): void {
    w.state = 'synced';
    this.syncedWatchers++;
    // A watcher waiting for a future start revision must not be handed the revisions before it: alone until then.
    const joinKey = w.minRev <= this.kv.currentRevision + 1 ? cohortKey(w) : undefined;
    let c = joinKey === undefined ? undefined : w.stream.cohorts.get(joinKey);
    if (c === undefined) {
      c = {
        key: w.key, end: w.end, shape: w.shape, indexKey: w.indexKey, filterPut: w.filterPut, filterDelete: w.filterDelete,
        stream: w.stream, minRev: w.minRev, members: new Set(), ids: undefined, joinKey,
      };
      this.synced.add(c);
      if (joinKey !== undefined) w.stream.cohorts.set(joinKey, c);
    }
    // Both want every revision after the current one (a cohort's minRev may lag: nothing came in its range since).
    c.members.add(w);
    c.ids = undefined;
    w.cohort = c;
  }

  /** Takes a synced watcher out of its cohort (which goes when empty); its minRev is the cohort's. */
  private leaveCohort(w: StoreWatcher): void {
    const c = w.cohort!;
    c.members.delete(w);
    c.ids = undefined;
    w.cohort = undefined;
    w.minRev = Math.max(w.minRev, c.minRev);
    this.syncedWatchers--;
    if (c.members.size > 0) return;
    this.synced.delete(c);
    if (c.joinKey !== undefined && c.stream.cohorts.get(c.joinKey) === c) c.stream.cohorts.delete(c.joinKey);
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
    this.addSynced(w);
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

/** The events a watcher (or cohort) with these filters is sent; undefined if none. */
function filtered(f: { readonly filterPut: boolean; readonly filterDelete: boolean }, events: readonly Event[]): readonly Event[] | undefined {
  if (!f.filterPut && !f.filterDelete) return events;
  const evs = events.filter((e) => (e.type === Event_EventType.PUT ? !f.filterPut : !f.filterDelete));
  return evs.length === 0 ? undefined : evs;
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
  /** @internal The store's cohorts of this stream's synced watchers, by cohortKey. */
  readonly cohorts = new Map<string, Cohort>();
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

  /**
   * True if `count` more responses of `bytes` together fit (an empty queue takes anything
   * within the count bound); else marks the stream starved.
   */
  private fits(bytes: number, count = 1): boolean {
    const n = this.queuedResponses;
    const max = this.bounds.maxQueuedResponses;
    if (count > max || (n > 0 && (n + count > max || this.queuedBytes + bytes > this.bounds.maxQueuedBytes))) {
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
    const tail = this.tailFanout(events, revision);
    if (tail !== undefined) {
      if (!this.fits(queuedIdBytes)) return false;
      if (Object.isFrozen(tail.watchIds)) tail.watchIds = [...tail.watchIds, watchId]; // a cohort's: not ours to change
      else (tail.watchIds as number[]).push(watchId);
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
   * @internal Queues `events` at `revision` for all of `watchIds` (a cohort's frozen array,
   * kept as it is) if they all fit; else nothing, and false.
   */
  trySendFanout(watchIds: readonly number[], events: readonly Event[], revision: number): boolean {
    if (this.closed) return true;
    const n = watchIds.length;
    const tail = this.tailFanout(events, revision);
    if (tail !== undefined) {
      if (!this.fits(n * queuedIdBytes, n)) return false;
      tail.watchIds = tail.watchIds.concat(watchIds);
      this.queuedResponses += n;
      this.queuedBytes += n * queuedIdBytes;
      return true;
    }
    const bytesEach = eventsReplyBytes(events);
    const bytes = bytesEach + (n - 1) * queuedIdBytes;
    if (!this.fits(bytes, n)) return false;
    this.queue.push({ kind: 'fanout', events, revision, watchIds, bytesEach });
    this.queuedResponses += n - 1; // push() counts the first
    this.push(undefined, bytes);
    return true;
  }

  /** The queue's last item if it is a fan-out of this events array at this revision (another watcher's share joins it). */
  private tailFanout(events: readonly Event[], revision: number): { watchIds: readonly number[] } | undefined {
    const tail = this.queue.length > this.head ? this.queue[this.queue.length - 1] : undefined;
    return tail !== undefined && tail.kind === 'fanout' && tail.events === events && tail.revision === revision ? tail as { watchIds: readonly number[] } : undefined;
  }

  /**
   * Queues a control message of the layer above. Always accepted: the caller bounds them by
   * not reading more client requests while hasRoom() is false.
   */
  pushControl(control: C): void {
    if (!this.closed) this.push({ kind: 'control', control }, replyOverheadBytes);
  }

  /** Queues `r` (undefined: the caller pushed it) as one more response of `bytes`, and wakes the reader. */
  private push(r: QueuedItem<C> | undefined, bytes: number): void {
    if (r !== undefined) this.queue.push(r);
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
