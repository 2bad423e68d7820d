// Watch as an async iterator of event batches that survives reconnects: the watcher remembers
// the next revision it owes its consumer (one past the last event delivered, or past the
// revision a progress notification vouched for) and re-creates itself from exactly that
// revision on a new stream, maybe on another endpoint. etcd never splits one revision's events
// across responses (fragments are joined here), so nothing is lost and nothing repeats.
import type * as grpc from '@grpc/grpc-js';
import { etcdserverpb as pb, type Event } from '../proto/index.js';
import type { Connection } from './connection.js';
import { streamError } from './connection.js';
import { Watch } from './rpcs.js';
import { toBuffer, rangeOf, type Bytes, type RangeSpec } from './bytes.js';
import { GrpcCode, WatchCompactedError, WatchCanceledError } from './errors.js';
import { AsyncQueue } from './queue.js';

export interface WatchOptions extends RangeSpec {
  /** First revision to see (default: changes after the watch is created). */
  startRevision?: number;
  prevKv?: boolean;
  /** Ask the server for periodic progress batches (events empty, progress true). */
  progressNotify?: boolean;
  /** Leave out puts or deletes. */
  filters?: ReadonlyArray<'noPut' | 'noDelete'>;
  signal?: AbortSignal;
  /** Ask the server to end the watch when its member has no leader (etcdctl's watches do). */
  requireLeader?: boolean;
  /** Batches held for a slow consumer before the stream is paused (default 1,000). */
  maxQueuedBatches?: number;
}

export interface WatchBatch {
  /** The response header of the batch (its last fragment's). */
  header: pb.ResponseHeader;
  /** The store's revision when the server sent this batch. */
  revision: number;
  events: Event[];
  /** A progress notification: no events up to `revision`. */
  progress: boolean;
}

const filterTypes = { noPut: pb.WatchCreateRequest_FilterType.NOPUT, noDelete: pb.WatchCreateRequest_FilterType.NODELETE };

/** Statuses after which the watch comes back on a new stream. */
const reconnectCodes = new Set<number>([GrpcCode.Unavailable, GrpcCode.Internal, GrpcCode.OK]);

export class Watcher implements AsyncIterable<WatchBatch> {
  /** The lowest revision the next event may have (0 until the first stream says where "now" is). */
  nextRevision: number;
  /** Settles when the server has created the watch the first time. */
  readonly created: Promise<void>;
  private resolveCreated!: () => void;
  private rejectCreated!: (e: unknown) => void;
  private readonly queue: AsyncQueue<WatchBatch>;
  private call: grpc.ClientDuplexStream<pb.WatchRequest, pb.WatchResponse> | undefined;
  private fragments: Event[] = [];
  private closed = false;
  private backoffMs = 0;

  constructor(private readonly conn: Connection, private readonly key: Buffer, private readonly opts: WatchOptions) {
    this.nextRevision = opts.startRevision ?? 0;
    this.created = new Promise((res, rej) => { this.resolveCreated = res; this.rejectCreated = rej; });
    this.created.catch(() => { /* also reported through the iterator */ });
    this.queue = new AsyncQueue(opts.maxQueuedBatches ?? 1000, () => this.call?.resume(), () => this.close());
    opts.signal?.addEventListener('abort', () => this.fail(opts.signal!.reason), { once: true });
    void this.connect();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> { return this.queue; }

  /** Stops the watch; the iterator ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.call?.cancel();
    this.queue.end();
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.call?.cancel();
    this.rejectCreated(e);
    this.queue.fail(e);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let stream;
    try {
      stream = await this.conn.bidi(Watch.watch, { requireLeader: this.opts.requireLeader });
    } catch (e) {
      if (this.closed) return;
      this.retryLater();
      return;
    }
    if (this.closed) { stream.call.cancel(); return; }
    const { ep, call } = stream;
    this.call = call;
    this.fragments = [];
    call.on('data', (res: pb.WatchResponse) => this.onResponse(res));
    call.on('error', () => { /* reported by 'status' */ });
    call.on('status', (s: grpc.StatusObject) => {
      if (this.call !== call || this.closed) return;
      this.call = undefined;
      if (reconnectCodes.has(s.code)) {
        this.conn.markFailed(ep);
        this.retryLater();
      } else {
        this.fail(streamError({ ...s, name: 'Error', message: s.details }));
      }
    });
    call.write({ createRequest: this.createRequest(), cancelRequest: undefined, progressRequest: undefined });
  }

  private retryLater(): void {
    this.backoffMs = Math.min(1000, this.backoffMs === 0 ? 50 : this.backoffMs * 2);
    setTimeout(() => void this.connect(), this.backoffMs).unref();
  }

  private createRequest(): pb.WatchCreateRequest {
    const o = this.opts;
    const [key, rangeEnd] = rangeOf(this.key, o);
    return {
      key, rangeEnd, startRevision: this.nextRevision,
      progressNotify: o.progressNotify ?? false, filters: (o.filters ?? []).map((f) => filterTypes[f]),
      prevKv: o.prevKv ?? false, watchId: 0, fragment: true,
    };
  }

  private onResponse(res: pb.WatchResponse): void {
    if (this.closed) return;
    const revision = res.header?.revision ?? 0;
    if (res.canceled) {
      this.fail(res.compactRevision > 0 ? new WatchCompactedError(res.compactRevision) : new WatchCanceledError(res.cancelReason));
      return;
    }
    if (res.created) {
      this.backoffMs = 0;
      if (this.nextRevision === 0) this.nextRevision = revision + 1;
      this.resolveCreated();
      return;
    }
    if (res.fragment) { this.fragments.push(...res.events); return; }
    let events = res.events;
    if (this.fragments.length > 0) { events = [...this.fragments, ...events]; this.fragments = []; }
    if (events.length === 0) {
      this.nextRevision = Math.max(this.nextRevision, revision + 1);
      if (this.opts.progressNotify) this.deliver({ header: res.header!, revision, events, progress: true });
      return;
    }
    // After a reconnect the server starts at nextRevision; anything older would be a repeat.
    if (events[0]!.kv!.modRevision < this.nextRevision) events = events.filter((e) => e.kv!.modRevision >= this.nextRevision);
    if (events.length === 0) return;
    this.nextRevision = events[events.length - 1]!.kv!.modRevision + 1;
    this.deliver({ header: res.header!, revision, events, progress: false });
  }

  private deliver(batch: WatchBatch): void {
    if (!this.queue.push(batch)) this.call?.pause();
  }
}

export class WatchClient {
  constructor(private readonly conn: Connection) {}

  /** Watches a key (or a range: prefix, fromKey, rangeEnd). Iterate it; close() or break to stop. */
  watch(key: Bytes, opts: WatchOptions = {}): Watcher {
    return new Watcher(this.conn, toBuffer(key), opts);
  }
}
