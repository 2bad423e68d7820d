/**
 * The hot Watch response: events for one watcher. With N watchers on a key each revision is
 * sent N times, differing only in watch_id, so an event's bytes are encoded once and shared
 * (cached per Event object, which the watchable store hands to every watcher), and so is the
 * header for a revision. Output is byte-identical to the generated encoder's.
 */
import { WatchResponse, type ResponseHeader } from '../proto/index.js';
import { Event } from '../proto/index.js';
import { Writer, sizeBytesField, sizeVarint } from '../proto/index.js';
import { encodeHeaderOnly } from './fast-codecs.js';

const eventBytes = new WeakMap<Event, Uint8Array>();
let lastHeader: { revision: number; raftTerm: number; clusterId: bigint; memberId: bigint; bytes: Uint8Array } | undefined;

function encodedEvent(e: Event): Uint8Array {
  let b = eventBytes.get(e);
  if (b === undefined) {
    b = Event.encode(e).finish();
    eventBytes.set(e, b);
  }
  return b;
}

function encodedHeader(h: ResponseHeader): Uint8Array {
  const c = lastHeader;
  if (c !== undefined && c.revision === h.revision && c.raftTerm === h.raftTerm && c.clusterId === h.clusterId && c.memberId === h.memberId) return c.bytes;
  const bytes = encodeHeaderOnly(h);
  lastHeader = { revision: h.revision, raftTerm: h.raftTerm, clusterId: h.clusterId, memberId: h.memberId, bytes };
  return bytes;
}

/** A WatchResponse carrying only header, watch_id and events. */
export function encodeEventsResponse(header: ResponseHeader, watchId: number, events: readonly Event[]): Uint8Array {
  if (watchId < 0 || header.revision < 0) return WatchResponse.encode(plainResponse(header, watchId, events)).finish();
  const h = encodedHeader(header);
  let size = h.length + (watchId !== 0 ? 1 + sizeVarint(watchId) : 0);
  for (const e of events) size += 1 + sizeBytesField(encodedEvent(e).length);
  const w = new Writer(size);
  w.raw(h);
  if (watchId !== 0) { w.byte(0x10); w.varint(watchId); }
  for (const e of events) { w.byte(0x5a); w.bytes(encodedEvent(e)); }
  return w.finish();
}

function plainResponse(header: ResponseHeader, watchId: number, events: readonly Event[]): WatchResponse {
  return { header, watchId, created: false, canceled: false, compactRevision: 0, cancelReason: '', fragment: false, events: events as Event[] };
}
