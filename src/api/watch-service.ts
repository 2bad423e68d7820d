/**
 * etcd's Watch service (v3rpc/watch.go) on the bidi support of grpc/server.ts.
 *
 * One WatchSession per gRPC stream. Its requests create and cancel watchers on an mvcc
 * WatchStream; everything the client is sent (create/cancel answers, events, compactions,
 * progress) goes through that stream's one bounded queue, so it arrives in the order it was
 * decided, and one send loop writes it out as HTTP/2 flow control allows. A client that does
 * not read fills its own queue and nothing else: its watchers fall behind and later catch up
 * from the store (mvcc/watchable-store.ts). Requests are not read while the queue is full, so
 * a client cannot grow it by sending either.
 *
 * Semantics kept from etcd 3.4 unless noted: an empty key is "\0"; a range_end of "\0" is
 * from-key; watch_id 0 means "assign one"; a duplicate id or an empty range is answered with
 * created+canceled and watch_id -1; prev_kv is looked up at send time (absent if compacted);
 * a compacted watcher gets compact_revision with canceled set; `fragment` splits a response
 * at max-request-bytes exactly as sendFragments does. As etcd 3.5 does, a progress request is
 * answered (watch_id -1) only once every watcher of the stream has caught up, so its
 * revision is a true bookmark.
 */
import { GrpcCode } from '../errors/index.js';
import { etcdError } from '../errors/index.js';
import { etcdserverpb as pb } from '../proto/index.js';
import { Event as PbEvent, Event_EventType, type Event } from '../proto/index.js';
import { sizeBytesField } from '../proto/index.js';
import type { ResponseHeader } from '../proto/index.js';
import type { Fanout, QueuedItem, WatchHost, WatchStream, WatchStreamBounds } from '../server/index.js';
import type { Codec, GrpcServer, ServerCall } from './grpc/index.js';
import { ResponseBatch, eventsResponse } from './watch-codec.js';
import { statusOf } from './grpc/index.js';
import { requiresLeader } from './metadata.js';

export const watchPath = '/etcdserverpb.Watch/Watch';

/**
 * Per-stream send queue bounds: ~8 MiB or 65,536 responses, whichever comes first. A queued
 * response of a fan-out is an id (its events are held once), so the count lets a stream with
 * a thousand watchers on a key hold dozens of revisions while its send loop catches up; they
 * then go out merged, one response per watcher (below that, each revision would push most of
 * them to the victim path and then to history reads). Bytes are what bounds memory.
 */
export const defaultWatchSendBounds: WatchStreamBounds = { maxQueuedResponses: 65536, maxQueuedBytes: 8 * 1024 * 1024 };

export interface WatchServiceOptions {
  host: WatchHost;
  /** The member's response header (cluster id, member id, raft term); the revision is replaced per response. */
  header(): ResponseHeader;
  /** Where fragmenting watchers' responses are split: etcd uses max-request-bytes + 512 KiB. */
  fragmentAtBytes: number;
  bounds?: WatchStreamBounds;
  /**
   * etcd's isWatchPermitted, asked at every create with the stream (its `token`, its certificate): the
   * cancel reason if the caller may not read the whole range, else undefined.
   */
  deniedReason?(call: Call, key: Buffer, rangeEnd: Buffer): string | undefined;
}

/** Responses are written already framed, several per write (watch-codec.ts shares event bytes among watchers). */
type Call = WatchCall;

/** What a session uses of its call: a gRPC ServerCall, or the JSON gateway's adaptor (gateway/watch.ts). */
export type WatchCall = Pick<ServerCall<pb.WatchRequest, Buffer>, 'headers' | 'messages' | 'write' | 'finish' | 'cancelled' | 'signal'>;

/** Serves one Watch stream on `call` until the client goes away or the session ends it. */
export function serveWatchCall(call: WatchCall, opts: WatchServiceOptions): Promise<void> {
  return new WatchSession(call, opts).run();
}

const preFramed: Codec<Buffer> = {
  encode: () => { throw new Error('watch responses are framed by the session'); },
  decode: () => { throw new Error('the server never decodes its own responses'); },
  framed: true,
};

/** What a create request asked for beyond the watcher itself. */
interface WatcherOptions {
  readonly prevKv: boolean;
  readonly fragment: boolean;
  readonly progressNotify: boolean;
  /** No events sent since the last progress tick (etcd's sws.progress[id] == true). */
  quiet: boolean;
}

const EMPTY = Buffer.alloc(0);
/**
 * Bytes of responses written to the HTTP/2 stream in one write (more if one response is
 * larger; a fan-out is split between writes). Under the paced writer's chunk size, so a batch
 * goes out in one stream write, and small enough that output buffers come from
 * watch-codec's slab.
 */
const maxBatchBytes = 60 * 1024;
const ZERO_KEY = Buffer.from([0]);

export function registerWatchService(grpc: GrpcServer, opts: WatchServiceOptions): void {
  grpc.addBidi(watchPath, pb.WatchRequest, preFramed, (call: Call) => new WatchSession(call, opts).run());
}

class WatchSession {
  private readonly stream: WatchStream<pb.WatchResponse>;
  private readonly watchers = new Map<number, WatcherOptions>();
  /** Watchers of this stream that asked for prev_kv (a send round then waits for the backend first). */
  private prevKvWatchers = 0;
  /** Watchers of this stream with prev_kv, fragment or progress_notify: a fan-out then goes watcher by watcher. */
  private particularWatchers = 0;
  private readonly batch = new ResponseBatch();
  /** A fan-out the last batch filled up in the middle of: the rest goes first in the next. */
  private partial: { readonly item: Fanout; from: number } | undefined;
  /** Merged fan-outs taken off the queue together (one response per watcher each), not yet begun; bounded by one run. */
  private merged: Fanout[] = [];
  private mergedAt = 0;
  private roomWaiter: (() => void) | undefined;
  private sendingDone = false;
  /** Resolves when this session ends the call itself (no leader, a send failure). */
  private readonly ended: Promise<void>;
  private markEnded!: () => void;

  constructor(private readonly call: Call, private readonly opts: WatchServiceOptions) {
    this.stream = opts.host.watchable.newWatchStream<pb.WatchResponse>(opts.bounds ?? defaultWatchSendBounds);
    this.ended = new Promise((resolve) => { this.markEnded = resolve; });
  }

  /** Ends the call with a status; the session then winds down (run() returns). */
  private endCall(code: GrpcCode, message: string): void {
    this.call.finish(code, message);
    this.markEnded();
  }

  async run(): Promise<void> {
    const call = this.call;
    const requireLeader = requiresLeader(call.headers);
    if (requireLeader && !this.opts.host.hasLeader()) {
      this.stream.close();
      throw etcdError('NoLeader');
    }
    const leaderWatch = requireLeader ? this.monitorLeader() : undefined;
    // etcd picks interval + up to 10% jitter once per stream, so restarts do not align them.
    const interval = this.opts.host.progressNotifyIntervalMs;
    const ticker = setInterval(() => this.progressTick(), interval + Math.floor(Math.random() * (interval / 10)));
    ticker.unref();
    const sending = this.sendLoop();
    try {
      for await (const req of call.messages()) {
        this.onRequest(req);
        while (!this.stream.hasRoom() && !call.cancelled && !this.sendingDone) await new Promise<void>((r) => { this.roomWaiter = r; });
      }
      // A client that half-closes still gets its events until it goes away (etcd's recvLoop
      // returns nil on EOF and Watch waits for the stream's context).
      if (!call.cancelled) await Promise.race([sending, cancelledPromise(call), this.ended]);
    } finally {
      clearInterval(ticker);
      if (leaderWatch !== undefined) clearInterval(leaderWatch);
      this.stream.close();
    }
    await sending;
  }

  /** etcd's monitorLeader: a `hasleader` stream ends once the member has had no leader for three election timeouts in a row. */
  private monitorLeader(): NodeJS.Timeout {
    let misses = 0;
    const t = setInterval(() => {
      misses = this.opts.host.hasLeader() ? 0 : misses + 1;
      if (misses < 3) return;
      const err = etcdError('NoLeader');
      this.endCall(err.code, err.message);
    }, this.opts.host.electionTimeoutMs);
    t.unref();
    return t;
  }

  // ------------------------------------------------------------ requests

  private onRequest(req: pb.WatchRequest): void {
    if (req.createRequest !== undefined) this.create(req.createRequest);
    else if (req.cancelRequest !== undefined) this.cancel(req.cancelRequest.watchId);
    else if (req.progressRequest !== undefined) this.stream.requestProgressAll();
  }

  private create(c: pb.WatchCreateRequest): void {
    const key = c.key.length === 0 ? ZERO_KEY : c.key;
    const end = c.rangeEnd.length === 0 ? undefined : c.rangeEnd.length === 1 && c.rangeEnd[0] === 0 ? EMPTY : c.rangeEnd;
    const wsrev = this.stream.rev;
    const denied = this.opts.deniedReason?.(this.call, c.key, c.rangeEnd);
    if (denied !== undefined) {
      this.stream.pushControl(this.response(wsrev, -1, { created: true, canceled: true, cancelReason: denied }));
      return;
    }
    const res = this.stream.watch({
      id: c.watchId, key, end, startRevision: c.startRevision,
      filterPut: c.filters.includes(pb.WatchCreateRequest_FilterType.NOPUT),
      filterDelete: c.filters.includes(pb.WatchCreateRequest_FilterType.NODELETE),
    });
    if (res.ok) {
      this.watchers.set(res.id, { prevKv: c.prevKv, fragment: c.fragment, progressNotify: c.progressNotify, quiet: true });
      if (c.prevKv) this.prevKvWatchers++;
      if (isParticular(c)) this.particularWatchers++;
    }
    this.stream.pushControl(this.response(wsrev, res.ok ? res.id : -1, {
      created: true, canceled: !res.ok, cancelReason: res.ok ? '' : res.reason,
    }));
  }

  private cancel(id: number): void {
    if (!this.stream.cancel(id)) return; // etcd answers nothing for an unknown id
    const w = this.watchers.get(id);
    if (w?.prevKv === true) this.prevKvWatchers--;
    if (w !== undefined && isParticular(w)) this.particularWatchers--;
    this.watchers.delete(id);
    this.stream.pushControl(this.response(this.stream.rev, id, { canceled: true }));
  }

  /** etcd's progress ticker: watchers with progress_notify that heard nothing since the last tick. */
  private progressTick(): void {
    for (const [id, w] of this.watchers) {
      if (!w.progressNotify) continue;
      if (w.quiet) this.stream.requestProgress(id);
      w.quiet = true;
    }
  }

  // ------------------------------------------------------------ sending

  /**
   * Writes the queue out in batches: every item queued now (up to maxBatchBytes) is encoded
   * into one buffer of gRPC frames and written with one call (one HTTP/2 write instead of
   * one per response: with many watchers on a key that write is most of the cost).
   */
  private async sendLoop(): Promise<void> {
    const batch = this.batch;
    try {
      for (;;) {
        if (this.partial === undefined && this.mergedAt === this.merged.length) await this.stream.readable();
        // prev_kv reads the backend: not while a defrag swaps it. The round below is synchronous.
        if (this.prevKvWatchers > 0) await this.opts.host.watchable.ready();
        const header = this.opts.header(); // this round's term; each response sets its revision
        while (batch.bytes < maxBatchBytes) {
          if (this.partial !== undefined) { this.encodeFanout(this.partial.item, this.partial.from, header); continue; }
          const fanout = this.nextFanout();
          if (fanout !== undefined) { this.encodeFanout(fanout, 0, header); continue; }
          const item = this.stream.nextItem();
          if (item === undefined) break;
          this.encode(item, header);
        }
        if (batch.count === 0) return; // closed
        this.wakeReceiver();
        try {
          await this.call.write(batch.take());
        } catch {
          return; // the client went away (or the server is closing): nothing left to send to
        }
      }
    } catch (e) {
      // A bug in this stream's sending ends this stream only.
      const [code, msg] = statusOf(e);
      this.endCall(code === GrpcCode.OK ? GrpcCode.Unknown : code, msg);
    } finally {
      this.sendingDone = true;
      this.wakeReceiver();
    }
  }

  /**
   * The next events to send if the queue's head is events: one revision's fan-out when that is
   * all there is (a stream that keeps up), else the revisions queued since the last write,
   * merged into one response per watcher (how a stream that fell behind catches up with
   * fewer, larger responses, as etcd's batching does).
   */
  private nextFanout(): Fanout | undefined {
    if (this.mergedAt === this.merged.length) {
      this.merged = this.stream.nextMergedFanouts();
      this.mergedAt = 0;
      if (this.merged.length === 0) return undefined;
    }
    const next = this.merged[this.mergedAt++];
    if (this.mergedAt === this.merged.length) { this.merged = []; this.mergedAt = 0; }
    return next;
  }

  private wakeReceiver(): void {
    const w = this.roomWaiter;
    if (w !== undefined) { this.roomWaiter = undefined; w(); }
  }

  /** Adds one queued item to the batch as WatchResponses (several when fragmented); `header` is this round's. */
  private encode(item: QueuedItem<pb.WatchResponse>, header: ResponseHeader): void {
    const batch = this.batch;
    switch (item.kind) {
      case 'control': batch.addMessage(pb.WatchResponse.encode(item.control).finish()); return;
      case 'compacted':
        // etcd's mvcc reply carries no revision here, so the header's revision is 0.
        header.revision = 0;
        batch.addMessage(pb.WatchResponse.encode(this.response(header, item.watchId, { compactRevision: item.compactRevision, canceled: true })).finish());
        return;
      case 'progress':
        header.revision = item.revision;
        batch.addMessage(pb.WatchResponse.encode(this.response(header, item.watchId, {})).finish());
        return;
      case 'fanout': this.encodeFanout(item, 0, header);
    }
  }

  /** Adds the fan-out's responses from watcher `from` on while the batch has room; notes where it stopped. */
  private encodeFanout(item: Fanout, from: number, header: ResponseHeader): void {
    header.revision = item.revision;
    let i = from;
    // Plain watchers only: every response is the same events, the batch splices in the ids.
    if (this.particularWatchers === 0) i = this.batch.addFanout(header, item.watchIds, item.events, from, maxBatchBytes);
    else while (i < item.watchIds.length && (i === from || this.batch.bytes < maxBatchBytes)) this.encodeEvents(item.watchIds[i++], item.events, header);
    this.partial = i < item.watchIds.length ? { item, from: i } : undefined;
  }

  /** One watcher's events response, with its prev_kv, fragmenting and progress bookkeeping. */
  private encodeEvents(watchId: number, evs: readonly Event[], header: ResponseHeader): void {
    const w = this.watchers.get(watchId);
    const events = w?.prevKv ? withPrevKv(evs, this.opts.host.watchable) : evs;
    if (w !== undefined && events.length > 0) w.quiet = false;
    if (w?.fragment !== true) { this.batch.addEvents(header, watchId, events); return; }
    for (const part of fragments(eventsResponse(header, watchId, events), this.opts.fragmentAtBytes)) this.batch.addMessage(pb.WatchResponse.encode(part).finish());
  }

  private header(revision: number): ResponseHeader {
    const header = this.opts.header();
    header.revision = revision;
    return header;
  }

  private response(header: ResponseHeader | number, watchId: number, fields: Partial<pb.WatchResponse>): pb.WatchResponse {
    return {
      header: typeof header === 'number' ? this.header(header) : header, watchId, created: false, canceled: false, compactRevision: 0, cancelReason: '', fragment: false, events: [], ...fields,
    };
  }
}

/** A watcher whose responses are not just header, id and events (or that tracks progress). */
function isParticular(o: { prevKv: boolean; fragment: boolean; progressNotify: boolean }): boolean {
  return o.prevKv || o.fragment || o.progressNotify;
}

/** The events with prev_kv set, one array per events array, shared by every prev_kv watcher that gets it. */
const withPrevKvCache = new WeakMap<readonly Event[], Event[]>();

/** Copies of the events with prev_kv set (etcd reads it at mod_revision - 1; none for a create). The backend must be ready. */
function withPrevKv(events: readonly Event[], store: WatchHost['watchable']): Event[] {
  let out = withPrevKvCache.get(events);
  if (out === undefined) {
    out = events.map((e) => {
      const kv = e.kv!;
      const isCreate = e.type === Event_EventType.PUT && kv.createRevision === kv.modRevision;
      return { type: e.type, kv, prevKv: isCreate ? undefined : store.prevKv(kv.key, kv.modRevision) };
    });
    withPrevKvCache.set(events, out);
  }
  return out;
}

function cancelledPromise(call: Call): Promise<void> {
  if (call.cancelled) return Promise.resolve();
  return new Promise((resolve) => call.signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * etcd's sendFragments: a response under maxRequestBytes (or with fewer than two events) goes
 * whole; otherwise events are packed into parts marked fragment, each closed before it would
 * reach maxRequestBytes (but holding at least one event); the last part is unmarked.
 */
export function fragments(wr: pb.WatchResponse, maxRequestBytes: number): pb.WatchResponse[] {
  // Each event: tag (field 11, one byte) + length + bytes.
  const eventBytes = wr.events.map((e) => 1 + sizeBytesField(PbEvent.encode(e).finish().length));
  const base = { ...wr, events: [], fragment: true };
  const baseBytes = pb.WatchResponse.encode(base).finish().length;
  let whole = baseBytes - 2; // without fragment=true (tag + 1 byte)
  for (const n of eventBytes) whole += n;
  if (whole < maxRequestBytes || wr.events.length < 2) return [wr];
  const parts: pb.WatchResponse[] = [];
  let idx = 0;
  while (idx < wr.events.length) {
    const events: Event[] = [];
    let size = baseBytes;
    for (; idx < wr.events.length; idx++) {
      size += eventBytes[idx];
      if (events.length > 0 && size >= maxRequestBytes) break;
      events.push(wr.events[idx]);
    }
    parts.push({ ...base, events, fragment: idx < wr.events.length });
  }
  return parts;
}
