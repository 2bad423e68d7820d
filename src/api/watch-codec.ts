/**
 * The hot Watch responses, framed for the wire in batches.
 *
 * With N watchers on a key each revision is sent N times, the responses differing only in
 * watch_id. So a response is a concatenation of pre-encoded parts: the header (encoded once
 * per revision), the watch_id field, and the events (encoded once per events array, which the
 * watchable store hands to every watcher that wants the same events; each event's own bytes
 * are also cached, for arrays that are not shared). A send round adds its responses to a
 * `ResponseBatch`, which then copies the parts, with gRPC's 5-byte prefixes, into one buffer:
 * no per-response allocation. Output is byte-identical to the generated encoder's.
 */
import { WatchResponse, type ResponseHeader } from '../proto/index.js';
import { Event } from '../proto/index.js';
import { sizeBytesField, sizeVarint, writeVarint } from '../proto/index.js';
import { encodeHeaderOnly } from './fast-codecs.js';

/** gRPC's message prefix: compressed flag + 4-byte length. */
export const grpcPrefixBytes = 5;
/** WatchResponse.events (field 11, length-delimited). */
const eventsTag = 0x5a;
/** WatchResponse.watch_id (field 2, varint). */
const watchIdTag = 0x10;

const eventBytes = new WeakMap<Event, Uint8Array>();
const eventsBytes = new WeakMap<readonly Event[], Uint8Array>();
/** The last events array encoded: consecutive responses of a fan-out share it (skips the WeakMap). */
let lastEvents: { events: readonly Event[]; bytes: Uint8Array } | undefined;
let lastHeader: { revision: number; raftTerm: number; clusterId: bigint; memberId: bigint; bytes: Uint8Array } | undefined;

function encodedEvent(e: Event): Uint8Array {
  let b = eventBytes.get(e);
  if (b === undefined) {
    b = Event.encode(e).finish();
    eventBytes.set(e, b);
  }
  return b;
}

/** The repeated events field of a response, tags and lengths included. */
function encodedEvents(events: readonly Event[]): Uint8Array {
  const last = lastEvents;
  if (last !== undefined && last.events === events) return last.bytes;
  let bytes = eventsBytes.get(events);
  if (bytes === undefined) {
    let size = 0;
    for (const e of events) size += 1 + sizeBytesField(encodedEvent(e).length);
    bytes = new Uint8Array(size);
    let at = 0;
    for (const e of events) {
      const b = encodedEvent(e);
      bytes[at++] = eventsTag;
      at = writeVarint(bytes, at, b.length);
      bytes.set(b, at);
      at += b.length;
    }
    eventsBytes.set(events, bytes);
  }
  lastEvents = { events, bytes };
  return bytes;
}

function encodedHeader(h: ResponseHeader): Uint8Array {
  const c = lastHeader;
  if (c !== undefined && c.revision === h.revision && c.raftTerm === h.raftTerm && c.clusterId === h.clusterId && c.memberId === h.memberId) return c.bytes;
  const bytes = encodeHeaderOnly(h);
  lastHeader = { revision: h.revision, raftTerm: h.raftTerm, clusterId: h.clusterId, memberId: h.memberId, bytes };
  return bytes;
}

/** Bytes of the watch_id field (absent when 0, as protobuf omits defaults). */
function watchIdBytes(id: number): number {
  return id !== 0 ? 1 + sizeVarint(id) : 0;
}

/**
 * WatchResponses to be written together, as gRPC frames in one buffer. Each entry is either
 * a whole encoded message (`events` undefined) or events responses in parts: encoded header,
 * watch_id (or the ids of a fan-out, one response each), encoded events.
 */
export class ResponseBatch {
  private readonly heads: Uint8Array[] = [];
  private readonly watchIds: Array<number | readonly number[]> = [];
  private readonly events: Array<Uint8Array | undefined> = [];
  /** Responses added so far. */
  count = 0;
  /** Framed size of everything added so far. */
  bytes = 0;

  /** An already encoded WatchResponse (control answers, fragments, the rare shapes). */
  addMessage(message: Uint8Array): void {
    this.heads.push(message);
    this.watchIds.push(0);
    this.events.push(undefined);
    this.count++;
    this.bytes += grpcPrefixBytes + message.length;
  }

  /** A response carrying only header, watch_id and events. */
  addEvents(header: ResponseHeader, watchId: number, events: readonly Event[]): void {
    if (watchId < 0 || header.revision < 0) { this.addMessage(WatchResponse.encode(eventsResponse(header, watchId, events)).finish()); return; }
    const head = encodedHeader(header);
    const evs = encodedEvents(events);
    this.heads.push(head);
    this.watchIds.push(watchId);
    this.events.push(evs);
    this.count++;
    this.bytes += grpcPrefixBytes + head.length + watchIdBytes(watchId) + evs.length;
  }

  /**
   * The same header and events to each of `watchIds[from..]`, in order, one response each,
   * until the batch holds `untilBytes` (at least one is added). Returns the index of the first
   * id not added (watchIds.length when all were).
   */
  addFanout(header: ResponseHeader, watchIds: readonly number[], events: readonly Event[], from = 0, untilBytes = Infinity): number {
    if (header.revision < 0) return this.addEachUntil(header, watchIds, events, from, untilBytes);
    const head = encodedHeader(header);
    const evs = encodedEvents(events);
    const frameBytes = grpcPrefixBytes + head.length + evs.length;
    let bytes = this.bytes;
    let to = from;
    while (to < watchIds.length && (to === from || bytes < untilBytes)) {
      const id = watchIds[to];
      if (id < 0) break; // a client-chosen negative id: the generated encoder's, below
      bytes += frameBytes + watchIdBytes(id);
      to++;
    }
    if (to === from) { this.addEvents(header, watchIds[from], events); return from + 1; }
    this.heads.push(head);
    this.watchIds.push(from === 0 && to === watchIds.length ? watchIds : watchIds.slice(from, to));
    this.events.push(evs);
    this.count += to - from;
    this.bytes = bytes;
    return to;
  }

  /** addEvents for `watchIds[from..]` until the batch holds `untilBytes` (at least one). */
  private addEachUntil(header: ResponseHeader, watchIds: readonly number[], events: readonly Event[], from: number, untilBytes: number): number {
    let i = from;
    while (i < watchIds.length && (i === from || this.bytes < untilBytes)) this.addEvents(header, watchIds[i++], events);
    return i;
  }

  /** Everything added, framed into one buffer; the batch is empty again. */
  take(): Buffer {
    const out = outputBuffer(this.bytes);
    let at = 0;
    for (let i = 0; i < this.heads.length; i++) {
      const head = this.heads[i]!;
      const evs = this.events[i];
      const ids = this.watchIds[i]!;
      if (evs === undefined) at = writeFrame(out, at, head, 0, undefined);
      else if (typeof ids === 'number') at = writeFrame(out, at, head, ids, evs);
      else at = writeFanout(out, at, head, ids, evs);
    }
    if (at !== out.length) throw new Error(`watch batch: wrote ${at} of ${out.length} bytes`);
    this.heads.length = 0;
    this.watchIds.length = 0;
    this.events.length = 0;
    this.count = 0;
    this.bytes = 0;
    return out;
  }
}

/**
 * Output buffers are carved from a shared slab, never reused: a region handed out stays the
 * writer's until it is garbage (node:http2 holds it until sent), and a slab is freed once all
 * its regions are. A fresh allocation per batch costs more than the frames written into it
 * (tens of KiB new from the allocator are page faults on every write: 2x the CPU per event
 * for a fan-out of 1,000 in bench/watch-fanout.ts). A stream whose client stopped reading
 * pins at most the slab its last batch is in (batches are at most ~60 KiB, watch-service.ts).
 */
const slabBytes = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(0);
let slabAt = 0;

function outputBuffer(bytes: number): Buffer {
  if (bytes > slabBytes >> 1) return Buffer.allocUnsafeSlow(bytes);
  if (slabAt + bytes > slab.length) {
    slab = Buffer.allocUnsafeSlow(slabBytes);
    slabAt = 0;
  }
  const out = slab.subarray(slabAt, slabAt + bytes);
  slabAt += (bytes + 7) & ~7; // regions 8-byte aligned
  return out;
}

/** One gRPC frame at `at`: `head`, then (for an events response) watch_id and `evs`. Returns the end. */
function writeFrame(out: Buffer, at: number, head: Uint8Array, watchId: number, evs: Uint8Array | undefined): number {
  const start = at;
  at += grpcPrefixBytes;
  out.set(head, at);
  at += head.length;
  if (evs !== undefined) {
    if (watchId !== 0) { out[at++] = watchIdTag; at = writeVarint(out, at, watchId); }
    out.set(evs, at);
    at += evs.length;
  }
  const len = at - start - grpcPrefixBytes;
  out[start] = 0;
  out[start + 1] = len >>> 24;
  out[start + 2] = (len >>> 16) & 0xff;
  out[start + 3] = (len >>> 8) & 0xff;
  out[start + 4] = len & 0xff;
  return at;
}

/**
 * The frames of a fan-out at `at`: one per id, alike but for the watch_id. Ids whose varint
 * has the same length make frames of one size: the first is written whole, copied by doubling
 * runs (a few memmoves however many watchers), and each copy's id patched in place. Returns
 * the end.
 */
function writeFanout(out: Buffer, at: number, head: Uint8Array, ids: readonly number[], evs: Uint8Array): number {
  const idAt = grpcPrefixBytes + head.length + 1; // after watch_id's tag, within a frame
  for (let i = 0; i < ids.length;) {
    const idBytes = watchIdBytes(ids[i]);
    let end = i + 1;
    while (end < ids.length && watchIdBytes(ids[end]) === idBytes) end++;
    const start = at;
    at = writeFrame(out, at, head, ids[i], evs);
    const frameBytes = at - start;
    for (let have = 1, want = end - i; have < want;) {
      const n = Math.min(have, want - have);
      out.copyWithin(at, start, start + n * frameBytes);
      at += n * frameBytes;
      have += n;
    }
    if (idBytes > 0) for (let k = i + 1, f = start + frameBytes; k < end; k++, f += frameBytes) writeVarint(out, f + idAt, ids[k]);
    i = end;
  }
  return at;
}

/** A WatchResponse with header, watch_id and events only. */
export function eventsResponse(header: ResponseHeader, watchId: number, events: readonly Event[]): WatchResponse {
  return { header, watchId, created: false, canceled: false, compactRevision: 0, cancelReason: '', fragment: false, events: events as Event[] };
}
