/**
 * The batched hand-off between the transport worker (thread.ts / worker.ts) and the main
 * thread. Records queued during one event-loop turn go out together at setImmediate, packed
 * into one ArrayBuffer that is transferred (not copied) with one postMessage.
 *
 * A record: type (u8), id (u32), arg (u32), payload length (u32), payload bytes. With
 * `framed`, the payload gets gRPC's 5-byte message prefix in front, so the worker can hand
 * a view of the batch straight to the HTTP/2 stream.
 */

/** Worker -> main. */
export const W2M = {
  /** A request: id = call id, arg = method index | CallFlag bits, payload = request message bytes. */
  call: 1,
  /** The client went away (server streams): id = call id. */
  cancel: 2,
  /** A server stream has room for the next message: id = call id. */
  pull: 3,
  /** GET /health: id = request id. */
  health: 4,
  /**
   * The auth token of the call record that follows it in the same batch (same id): payload =
   * utf-8 token. Absent when the call carries none (no `token` or `authorization` metadata).
   */
  token: 5,
  /** A client connection that is not HTTP/2 (HTTP/1.1: the gateway, /health...), relayed whole to the main thread (h1-relay.ts): id = connection id. */
  h1open: 6,
  /** Bytes the client sent on relayed connection `id`. */
  h1data: 7,
  /** The client ended its side of relayed connection `id`. */
  h1end: 8,
  /** Relayed connection `id` is closed (destroyed, or both sides ended). */
  h1close: 9,
  /** arg = bytes of M2W.h1data written to relayed connection `id`'s socket (flow control). */
  h1ack: 10,
} as const;

/**
 * The call metadata the main thread needs, as flag bits above the method index in a W2M.call
 * record's arg (no record or object per call; the token, rarer and variable, has W2M.token).
 */
export const CallFlag = {
  /** etcd's `hasleader: true` metadata (metadata.ts requiresLeader). */
  requireLeader: 1 << 24,
} as const;
/** The method index part of a W2M.call arg: methods are far fewer than 2^24. */
export const methodIndexMask = (1 << 24) - 1;

/** Main -> worker. */
export const M2W = {
  /** Unary response: payload = framed message. */
  reply: 1,
  /** Final status: arg = gRPC code, payload = utf-8 message (code 0 ends a stream). */
  status: 2,
  /** One server-stream message: payload = framed message. */
  message: 3,
  /** Health answer: id = request id, arg = 1 if healthy, payload = reason. */
  health: 4,
  /** Bytes for the client of relayed connection `id`. */
  h1data: 5,
  /** The server ended its side of relayed connection `id` (after the bytes before it). */
  h1end: 6,
  /** Drop relayed connection `id` at once. */
  h1destroy: 7,
  /** arg = bytes of W2M.h1data the main thread's HTTP server has taken (flow control). */
  h1ack: 8,
} as const;

/** Bytes a relayed connection may have sent and not yet acknowledged, in each direction. */
export const relayWindowBytes = 256 * 1024;

const recordHeaderBytes = 13;
const prefixBytes = 5;
/** A batch is sent at once when its payloads pass this, not only at the end of the turn. */
export const maxBatchBytes = 1 << 20;

export type BatchSink = (batch: ArrayBuffer) => void;

/** Accumulates records and posts them as one transferred ArrayBuffer per event-loop turn. */
export class BatchWriter {
  private types: number[] = [];
  private ids: number[] = [];
  private args: number[] = [];
  private payloads: Array<Uint8Array | undefined> = [];
  private framed: boolean[] = [];
  private bytes = 0;
  private scheduled = false;
  closed = false;
  /** Counters for tuning: batches posted and records in them. */
  readonly stats = { batches: 0, records: 0 };

  constructor(private readonly sink: BatchSink) {}

  push(type: number, id: number, arg: number, payload?: Uint8Array, framed = false): void {
    if (this.closed) return;
    this.types.push(type);
    this.ids.push(id);
    this.args.push(arg);
    this.payloads.push(payload);
    this.framed.push(framed);
    this.bytes += recordHeaderBytes + (payload?.length ?? 0) + (framed ? prefixBytes : 0);
    if (this.bytes >= maxBatchBytes) { this.flush(); return; }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onImmediate);
    }
  }

  private readonly onImmediate = (): void => {
    this.scheduled = false;
    this.flush();
  };

  flush(): void {
    const n = this.types.length;
    if (n === 0 || this.closed) return;
    const ab = new ArrayBuffer(this.bytes);
    const u8 = new Uint8Array(ab);
    const dv = new DataView(ab);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const p = this.payloads[i];
      const plen = p?.length ?? 0;
      const fr = this.framed[i]!;
      dv.setUint8(off, this.types[i]!);
      dv.setUint32(off + 1, this.ids[i]!);
      dv.setUint32(off + 5, this.args[i]!);
      dv.setUint32(off + 9, plen + (fr ? prefixBytes : 0));
      off += recordHeaderBytes;
      if (fr) {
        u8[off] = 0;
        dv.setUint32(off + 1, plen);
        off += prefixBytes;
      }
      if (p !== undefined) { u8.set(p, off); off += plen; }
    }
    this.types = [];
    this.ids = [];
    this.args = [];
    this.payloads = [];
    this.framed = [];
    this.bytes = 0;
    this.stats.batches++;
    this.stats.records += n;
    this.sink(ab);
  }
}

/** Calls `onRecord` for each record of a batch; `payload` is a Buffer view into the batch. */
export function readBatch(ab: ArrayBuffer, onRecord: (type: number, id: number, arg: number, payload: Buffer) => void): void {
  const dv = new DataView(ab);
  let off = 0;
  while (off < ab.byteLength) {
    const type = dv.getUint8(off);
    const id = dv.getUint32(off + 1);
    const arg = dv.getUint32(off + 5);
    const len = dv.getUint32(off + 9);
    off += recordHeaderBytes;
    onRecord(type, id, arg, Buffer.from(ab, off, len));
    off += len;
  }
}
