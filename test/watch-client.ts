// A Watch stream client for the watch tests: @grpc/grpc-js with the generated codecs, every
// response recorded in arrival order, and waits on what has arrived (never on time alone).
import * as grpc from '@grpc/grpc-js';
import { WatchRequest, WatchResponse, WatchCreateRequest } from '../src/proto/gen/etcdserverpb/rpc.js';
import type { EtcdClient } from './harness.js';
import { normalize } from './harness.js';

const ser = (m: WatchRequest) => Buffer.from(WatchRequest.encode(m).finish());
const des = (b: Buffer) => WatchResponse.decode(b);

export class WatchStreamClient {
  readonly responses: WatchResponse[] = [];
  /** The stream's status once it ended (code, details), else undefined. */
  status: { code: number; details: string } | undefined;
  private readonly call: grpc.ClientDuplexStream<WatchRequest, WatchResponse>;
  private waiters: Array<() => void> = [];

  constructor(client: EtcdClient, metadata: Record<string, string> = {}) {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    this.call = client.raw.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', ser, des, md);
    this.call.on('data', (r: WatchResponse) => { this.responses.push(r); this.wake(); });
    this.call.on('error', (e: grpc.ServiceError) => { this.status = { code: e.code, details: e.details }; this.wake(); });
    this.call.on('status', (s: grpc.StatusObject) => { this.status ??= { code: s.code, details: s.details }; this.wake(); });
  }

  create(c: Partial<WatchCreateRequest>): void {
    this.call.write({ createRequest: { ...WatchCreateRequest.fromJSON({}), ...c }, cancelRequest: undefined, progressRequest: undefined });
  }

  cancel(watchId: number): void {
    this.call.write({ createRequest: undefined, cancelRequest: { watchId }, progressRequest: undefined });
  }

  progress(): void {
    this.call.write({ createRequest: undefined, cancelRequest: undefined, progressRequest: {} });
  }

  /** Resolves once `pred` holds for the responses so far; rejects after timeoutMs (a hang is a failure, not a measurement). */
  async until(pred: (rs: WatchResponse[]) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.responses)) {
      if (this.status !== undefined && !pred(this.responses)) throw new Error(`stream ended (${this.status.code} ${this.status.details}) before: ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for: ${what}; got ${JSON.stringify(normalize(this.responses))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 1000));
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** Waits until `n` responses arrived. */
  count(n: number, what = `${n} responses`): Promise<void> {
    return this.until((rs) => rs.length >= n, what);
  }

  /** Waits for an event at or past `rev` for watcher `id`. */
  eventAt(id: number, rev: number): Promise<void> {
    return this.until((rs) => rs.some((r) => r.watchId === id && r.events.some((e) => e.kv!.modRevision >= rev)), `watcher ${id} event at ${rev}`);
  }

  /** Waits until the stream ended with a status. */
  ended(): Promise<void> {
    return this.until(() => this.status !== undefined, 'stream end');
  }

  /** Stops reading: HTTP/2 flow control then pushes back on the server (a slow consumer). */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  close(): void {
    this.call.cancel();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
}

/** Responses as comparable plain data (ids and raft term dropped from headers by normalize). */
export function plain(rs: WatchResponse[]): unknown {
  return normalize(rs);
}
