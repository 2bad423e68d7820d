/**
 * Header lists in and out: a request's decoded fields become the object the gRPC server and
 * the h2c handlers read (node:http2's shape: lower-case names, pseudo-headers included, a null
 * prototype), checked as RFC 7540 §8.1.2 asks; response header objects become header blocks,
 * a frozen object's block encoded once and reused (the gRPC server's OK headers and trailers).
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import type { StreamHeaders } from '../grpc/transport.js';
import { encodeHeaderBlock } from './hpack.js';

const requestPseudo = new Set([':method', ':scheme', ':authority', ':path']);
/** Connection-specific fields HTTP/2 forbids (RFC 7540 §8.1.2.2). */
const connectionSpecific = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/** Control characters Go's ValidHeaderFieldValue refuses (all but tab), and DEL. */
const badValue = /[\0-\x08\x0a-\x1f\x7f]/;
const upperCase = /[A-Z]/;

/**
 * A header object without Object.prototype in its chain (no "constructor", no "__proto__"
 * setter, as node's are), made by `new` so V8 keeps it in fast mode with hidden classes
 * shared by requests whose fields come in the same order (Object.create(null) would start
 * every request's headers as a hash table).
 */
const HeaderBag = function HeaderBag(this: object) { /* fields added by the collector */ } as unknown as new () => StreamHeaders;
HeaderBag.prototype = Object.create(null) as StreamHeaders;

/**
 * Collects header blocks' fields (pass `onField` to the HPACK decoder; one collector per
 * connection, `start` before each block). A malformed list is remembered, not thrown: the
 * whole block must still be decoded to keep the HPACK table in step, and the stream is then
 * reset (a stream error, RFC 7540 §8.1.2.6).
 */
export class RequestHeaders {
  headers: StreamHeaders = new HeaderBag();
  /** Why the list is malformed, if it is. */
  problem: string | undefined;
  private regularSeen = false;
  private trailers = false;

  /** Starts a block: a request's headers, or trailers (no pseudo-header allowed). */
  start(trailers: boolean): void {
    this.headers = new HeaderBag();
    this.problem = undefined;
    this.regularSeen = false;
    this.trailers = trailers;
  }

  readonly onField = (name: string, value: string): void => {
    if (this.problem !== undefined) return;
    const h = this.headers as Record<string, string | string[] | undefined>;
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (this.trailers || this.regularSeen || !requestPseudo.has(name) || h[name] !== undefined) {
        this.problem = `bad pseudo-header ${name}`;
        return;
      }
      h[name] = value;
      return;
    }
    this.regularSeen = true;
    if (upperCase.test(name) || connectionSpecific.has(name) || (name === 'te' && value !== 'trailers') || badValue.test(value)) {
      this.problem = `malformed header ${name}`;
      return;
    }
    const had = h[name];
    if (had === undefined) h[name] = value;
    else if (name === 'set-cookie') h[name] = Array.isArray(had) ? [...had, value] : [had as string, value];
    else h[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  };

  /** After the block: a request must name its method, and unless CONNECT its scheme and path. */
  finish(): void {
    if (this.problem !== undefined || this.trailers) return;
    const h = this.headers;
    if (h[':method'] === undefined) this.problem = 'missing :method';
    else if (h[':method'] !== 'CONNECT' && (h[':path'] === undefined || h[':path'] === '' || h[':scheme'] === undefined)) this.problem = 'missing :path or :scheme';
  }
}

const frozenBlocks = new WeakMap<object, Buffer>();

/**
 * The header block for a response's (or trailers') header object: `:status` first, names
 * lower-cased, array values as repeated fields. A frozen object's block is cached.
 */
export function responseBlock(headers: OutgoingHttpHeaders, date: boolean): Buffer {
  const frozen = !date && Object.isFrozen(headers);
  if (frozen) {
    const cached = frozenBlocks.get(headers);
    if (cached !== undefined) return cached;
  }
  const fields: Array<[string, string]> = [];
  const status = headers[':status'];
  if (status !== undefined) fields.push([':status', String(status)]);
  for (const name in headers) {
    if (name === ':status') continue;
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (Array.isArray(value)) for (const v of value) fields.push([lower, String(v)]);
    else fields.push([lower, String(value)]);
  }
  if (date) fields.push(['date', new Date().toUTCString()]);
  const block = encodeHeaderBlock(fields);
  if (frozen) frozenBlocks.set(headers, block);
  return block;
}
