/**
 * HPACK (RFC 7541): the header compression of Concord's own HTTP/2 server.
 *
 * HpackDecoder reads the header blocks a client sends: one per connection, since the dynamic
 * table it keeps is the connection's compression context. Everything in a block is hostile
 * until parsed: integers, string lengths, Huffman code, indexes and table size updates are
 * all checked, and any violation is an HpackError, which RFC 7540 §4.3 makes a connection
 * error of type COMPRESSION_ERROR (the caller answers GOAWAY and closes; this decoder's
 * state is then unusable, and it refuses further blocks).
 *
 * It runs for every request, so it is built not to allocate for what repeats: grpc-go and
 * grpc-js index most request headers, so from the second request on most fields are
 * one-byte references into the dynamic table, and the decoder hands out the very string
 * objects the table holds. nghttp2 (grpc-js) never indexes :path, so it sends the same
 * literal in every request: the last literal per static name is remembered as encoded
 * (RepeatedLiterals) and the same octets give back the same string. Other literal strings
 * become strings in one native latin1 copy (Huffman-coded ones are first decoded into a
 * reused scratch buffer).
 *
 * encodeHeaderBlock writes the server's response headers and trailers statelessly: static
 * table references and literals that are never added to the client's table, so one block can
 * be encoded once and sent on any connection any number of times.
 *
 * Header names and values are latin1 strings: one char per octet, as HTTP/2 carries them
 * (gRPC percent-encodes grpc-message and base64-encodes -bin values, so they are ASCII).
 */
import { huffmanDecode, huffmanDecodedMax, huffmanInvalid } from './huffman.js';

/** A header block that is not valid HPACK, or too large: a COMPRESSION_ERROR connection error. */
export class HpackError extends Error {}

/** RFC 7541 Appendix A: entries 1 to 61 (index 0 is not an entry). */
const staticTable: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], // 1
  [':method', 'GET'], // 2
  [':method', 'POST'], // 3
  [':path', '/'], // 4
  [':path', '/index.html'], // 5
  [':scheme', 'http'], // 6
  [':scheme', 'https'], // 7
  [':status', '200'], // 8
  [':status', '204'], // 9
  [':status', '206'], // 10
  [':status', '304'], // 11
  [':status', '400'], // 12
  [':status', '404'], // 13
  [':status', '500'], // 14
  ['accept-charset', ''], // 15
  ['accept-encoding', 'gzip, deflate'], // 16
  ['accept-language', ''], // 17
  ['accept-ranges', ''], // 18
  ['accept', ''], // 19
  ['access-control-allow-origin', ''], // 20
  ['age', ''], // 21
  ['allow', ''], // 22
  ['authorization', ''], // 23
  ['cache-control', ''], // 24
  ['content-disposition', ''], // 25
  ['content-encoding', ''], // 26
  ['content-language', ''], // 27
  ['content-length', ''], // 28
  ['content-location', ''], // 29
  ['content-range', ''], // 30
  ['content-type', ''], // 31
  ['cookie', ''], // 32
  ['date', ''], // 33
  ['etag', ''], // 34
  ['expect', ''], // 35
  ['expires', ''], // 36
  ['from', ''], // 37
  ['host', ''], // 38
  ['if-match', ''], // 39
  ['if-modified-since', ''], // 40
  ['if-none-match', ''], // 41
  ['if-range', ''], // 42
  ['if-unmodified-since', ''], // 43
  ['last-modified', ''], // 44
  ['link', ''], // 45
  ['location', ''], // 46
  ['max-forwards', ''], // 47
  ['proxy-authenticate', ''], // 48
  ['proxy-authorization', ''], // 49
  ['range', ''], // 50
  ['referer', ''], // 51
  ['refresh', ''], // 52
  ['retry-after', ''], // 53
  ['server', ''], // 54
  ['set-cookie', ''], // 55
  ['strict-transport-security', ''], // 56
  ['transfer-encoding', ''], // 57
  ['user-agent', ''], // 58
  ['vary', ''], // 59
  ['via', ''], // 60
  ['www-authenticate', ''], // 61
];
const staticNames: readonly string[] = ['', ...staticTable.map(([name]) => name)];
const staticValues: readonly string[] = ['', ...staticTable.map(([, value]) => value)];
const staticCount = staticTable.length;

/** Per-entry overhead every table size and header list size counts (RFC 7541 §4.1). */
const entryOverheadBytes = 32;
/** Integers above this are refused (nothing in a block may be that large). */
const maxIntegerValue = 0x7fffffff;
/** The longest HPACK integer accepted: prefix octet + 5 continuation octets (31 bits are 5 groups of 7). */
const maxIntegerContinuationBytes = 5;

export const defaultMaxTableBytes = 4096;
/** Ring slots a new dynamic table starts with (a 4096-byte table of request headers holds 20-60). */
const initialTableSlots = 32;
export const defaultMaxHeaderListBytes = 64 * 1024;

/** Views on a Uint8Array as a Buffer (for latin1Slice), without copying. */
interface Latin1Source extends Uint8Array { latin1Slice(start: number, end: number): string }

const emptySource = Buffer.alloc(0) as unknown as Latin1Source;

function asLatin1Source(block: Uint8Array): Latin1Source {
  return (Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength)) as unknown as Latin1Source;
}

/**
 * The decoder's dynamic table: a ring of entries, newest at `newest`, never more than
 * limitBytes in total (an entry counts name + value + 32 octets; latin1 strings have one
 * char per octet, so a string's length is its size).
 */
class DynamicTable {
  /** The ring; it grows (doubling) when full, so its slots follow what the table holds, not its limit. */
  private names: string[] = new Array<string>(initialTableSlots).fill('');
  private values: string[] = new Array<string>(initialTableSlots).fill('');
  private newest = -1;
  /** Entries held. */
  count = 0;
  /** Their size, as RFC 7541 §4.1 counts it. */
  bytes = 0;

  constructor(private limitBytes: number) {}

  /** The slot of entry `i` counted from the newest (0); i < count. */
  private slot(i: number): number {
    const s = this.newest - i;
    return s < 0 ? s + this.names.length : s;
  }

  name(i: number): string { return this.names[this.slot(i)]!; }
  value(i: number): string { return this.values[this.slot(i)]!; }

  /** A dynamic table size update (RFC 7541 §4.3): evicts until the table fits. */
  setLimit(limitBytes: number): void {
    this.limitBytes = limitBytes;
    this.evictTo(limitBytes);
  }

  /** Adds an entry, evicting the oldest first; one larger than the limit empties the table (§4.4). */
  add(name: string, value: string): void {
    const size = name.length + value.length + entryOverheadBytes;
    if (size > this.limitBytes) { this.evictTo(0); return; }
    this.evictTo(this.limitBytes - size);
    if (this.count === this.names.length) this.grow();
    this.newest = this.newest + 1 === this.names.length ? 0 : this.newest + 1;
    this.names[this.newest] = name;
    this.values[this.newest] = value;
    this.count++;
    this.bytes += size;
  }

  /** Doubles the ring, oldest entry first in slot 0. Entries take >= 32 octets, so count <= limit / 32. */
  private grow(): void {
    const names = new Array<string>(this.names.length * 2).fill('');
    const values = new Array<string>(this.names.length * 2).fill('');
    for (let i = 0; i < this.count; i++) {
      names[this.count - 1 - i] = this.name(i);
      values[this.count - 1 - i] = this.value(i);
    }
    this.names = names;
    this.values = values;
    this.newest = this.count - 1;
  }

  private evictTo(maxBytes: number): void {
    while (this.bytes > maxBytes) {
      const oldest = this.slot(this.count - 1);
      this.bytes -= this.names[oldest]!.length + this.values[oldest]!.length + entryOverheadBytes;
      this.names[oldest] = ''; // let the strings go
      this.values[oldest] = '';
      this.count--;
    }
  }
}

/**
 * One connection's HPACK decoding context (RFC 7541 §2.2). maxTableBytes is the
 * SETTINGS_HEADER_TABLE_SIZE the server announced (the most a size update may ask for);
 * maxHeaderListBytes bounds a block's decoded header list (names + values + 32 per field,
 * as SETTINGS_MAX_HEADER_LIST_SIZE counts it), whatever its encoded size.
 */
export class HpackDecoder {
  private readonly table: DynamicTable;
  /** The block being decoded and the read position in it (fields, to avoid returning pairs). */
  private src: Latin1Source = emptySource;
  private pos = 0;
  /** Where Huffman strings are decoded; grows up to what one header list may hold. */
  private scratch: Buffer = Buffer.allocUnsafe(256);
  /** Set by an HpackError: the context is out of step with the client's for good. */
  private failed = false;
  private readonly literals = new RepeatedLiterals();

  constructor(
    private readonly maxTableBytes = defaultMaxTableBytes,
    private readonly maxHeaderListBytes = defaultMaxHeaderListBytes,
  ) {
    if (!Number.isInteger(maxTableBytes) || maxTableBytes < 0 || maxTableBytes > maxIntegerValue) throw new RangeError(`bad maxTableBytes ${maxTableBytes}`);
    if (!Number.isInteger(maxHeaderListBytes) || maxHeaderListBytes < 0) throw new RangeError(`bad maxHeaderListBytes ${maxHeaderListBytes}`);
    this.table = new DynamicTable(maxTableBytes);
  }

  /** Entries in the dynamic table and their size (for tests and metrics). */
  get tableCount(): number { return this.table.count; }
  get tableBytes(): number { return this.table.bytes; }
  /** The dynamic table entry at HPACK index `index` (62 = newest), for tests. */
  tableEntry(index: number): readonly [string, string] | undefined {
    const i = index - staticCount - 1;
    return i >= 0 && i < this.table.count ? [this.table.name(i), this.table.value(i)] : undefined;
  }

  /** Decodes one whole header block (HEADERS + CONTINUATIONs joined); onHeader per field, in order. */
  decode(block: Uint8Array, onHeader: (name: string, value: string) => void): void {
    if (this.failed) throw new HpackError('HPACK context unusable after an earlier error');
    this.src = asLatin1Source(block);
    this.pos = 0;
    try {
      this.decodeFields(onHeader);
    } catch (e) {
      // Whatever stopped the block midway (our HpackError, or onHeader throwing), the fields
      // after it never reached the dynamic table: it is out of step with the client's.
      this.failed = true;
      throw e;
    } finally {
      this.src = emptySource;
    }
  }

  private decodeFields(onHeader: (name: string, value: string) => void): void {
    const src = this.src;
    const end = src.length;
    let listBytes = 0;
    let fieldSeen = false;
    while (this.pos < end) {
      const first = src[this.pos]!;
      let name: string;
      let value: string;
      if (first >= 0x80) { // indexed field (§6.1)
        const index = this.readInt(7);
        name = this.nameAt(index);
        value = this.valueAt(index);
      } else if (first >= 0x40) { // literal with incremental indexing (§6.2.1)
        const index = this.readInt(6);
        name = index === 0 ? this.readString() : this.nameAt(index);
        value = this.readString();
        this.table.add(name, value);
      } else if (first >= 0x20) { // dynamic table size update (§6.3)
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const limit = this.readInt(5);
        if (limit > this.maxTableBytes) throw new HpackError(`dynamic table size update to ${limit} above the limit of ${this.maxTableBytes}`);
        this.table.setLimit(limit);
        continue;
      } else { // literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3)
        const index = this.readInt(4);
        if (index === 0) {
          name = this.readString();
          value = this.readString();
        } else {
          name = this.nameAt(index);
          value = this.readString(index <= staticCount ? index : 0);
        }
      }
      fieldSeen = true;
      listBytes += name.length + value.length + entryOverheadBytes;
      if (listBytes > this.maxHeaderListBytes) throw new HpackError(`header list larger than ${this.maxHeaderListBytes} bytes`);
      onHeader(name, value);
    }
  }

  private nameAt(index: number): string {
    if (index <= staticCount) {
      if (index === 0) throw new HpackError('HPACK index 0');
      return staticNames[index]!;
    }
    const i = index - staticCount - 1;
    if (i >= this.table.count) throw new HpackError(`HPACK index ${index} past the table (${staticCount + this.table.count} entries)`);
    return this.table.name(i);
  }

  /** The value of an index nameAt has checked. */
  private valueAt(index: number): string {
    return index <= staticCount ? staticValues[index]! : this.table.value(index - staticCount - 1);
  }

  /** An integer with an N-bit prefix (§5.1) at pos; advances pos past it. */
  private readInt(prefixBits: number): number {
    const src = this.src;
    const max = (1 << prefixBits) - 1;
    let value = src[this.pos++]! & max; // callers have checked pos < length
    if (value < max) return value;
    for (let i = 0, shift = 0; i < maxIntegerContinuationBytes; i++, shift += 7) {
      if (this.pos >= src.length) throw new HpackError('truncated HPACK integer');
      const byte = src[this.pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (value > maxIntegerValue) throw new HpackError('HPACK integer above 2^31-1');
      if (byte < 0x80) return value;
    }
    throw new HpackError('HPACK integer too long');
  }

  /**
   * A string literal (§5.2) at pos, as a latin1 string; advances pos past it. `repeatSlot`
   * (a static index, or 0 for none) names where the same octets were last seen.
   */
  private readString(repeatSlot = 0): string {
    const src = this.src;
    const first = this.pos;
    if (first >= src.length) throw new HpackError('truncated HPACK string');
    const huffman = src[first]! >= 0x80;
    const length = this.readInt(7);
    const start = this.pos;
    if (length > src.length - start) throw new HpackError('HPACK string longer than its header block');
    const end = start + length;
    this.pos = end;
    if (repeatSlot !== 0) {
      const seen = this.literals.lookup(repeatSlot, src, first, end);
      if (seen !== undefined) return seen;
    }
    const value = huffman ? this.huffmanString(start, end) : src.latin1Slice(start, end);
    if (repeatSlot !== 0) this.literals.remember(repeatSlot, src, first, end, value);
    return value;
  }

  private huffmanString(start: number, end: number): string {
    const decoded = huffmanDecode(this.src, start, end, this.scratchFor(end - start));
    if (decoded === huffmanInvalid) throw new HpackError('invalid HPACK Huffman code');
    if (decoded < 0) throw new HpackError(`header list larger than ${this.maxHeaderListBytes} bytes`);
    return (this.scratch as unknown as Latin1Source).latin1Slice(0, decoded);
  }

  /**
   * A scratch buffer for decoding `encodedBytes` of Huffman code: large enough for any
   * decoding, or for the largest string a header list may hold (a longer one fails anyway).
   */
  private scratchFor(encodedBytes: number): Buffer {
    const need = Math.min(huffmanDecodedMax(encodedBytes), this.maxHeaderListBytes);
    if (need > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.min(Math.max(need, this.scratch.length * 2), this.maxHeaderListBytes));
    return this.scratch;
  }
}

/** Encoded literals longer than this (length prefix included) are not remembered. */
const repeatedLiteralMaxBytes = 64;

/**
 * The last literal value sent without indexing under each static-table name, as encoded and
 * as decoded: when the same octets come again, the same string is handed out with no
 * decoding and no allocation. nghttp2 (node:http2, grpc-js) never indexes :path, so every
 * request of a grpc-js client carries it as such a literal, mostly the same one.
 */
class RepeatedLiterals {
  /** Slot i holds the encoded octets for static index i at i * repeatedLiteralMaxBytes. */
  private readonly encoded = new Uint8Array((staticCount + 1) * repeatedLiteralMaxBytes);
  private readonly encodedLength = new Int32Array(staticCount + 1);
  private readonly decoded: string[] = new Array<string>(staticCount + 1).fill('');

  /** The string last decoded from exactly src[first, end) in `slot`, if it was. */
  lookup(slot: number, src: Uint8Array, first: number, end: number): string | undefined {
    const n = end - first;
    if (this.encodedLength[slot] !== n) return undefined;
    const base = slot * repeatedLiteralMaxBytes;
    for (let i = 0; i < n; i++) if (this.encoded[base + i] !== src[first + i]) return undefined;
    return this.decoded[slot];
  }

  remember(slot: number, src: Uint8Array, first: number, end: number, value: string): void {
    const n = end - first;
    if (n > repeatedLiteralMaxBytes) return;
    const base = slot * repeatedLiteralMaxBytes;
    for (let i = 0; i < n; i++) this.encoded[base + i] = src[first + i]!;
    this.encodedLength[slot] = n;
    this.decoded[slot] = value;
  }
}

/** Static-table positions by name: the first index with the name, and indexes by value. */
const staticByName = new Map<string, { nameIndex: number; byValue: Map<string, number> }>();
for (let i = 1; i <= staticCount; i++) {
  let e = staticByName.get(staticNames[i]!);
  if (!e) staticByName.set(staticNames[i]!, e = { nameIndex: i, byValue: new Map() });
  if (!e.byValue.has(staticValues[i]!)) e.byValue.set(staticValues[i]!, i);
}

/** One octet per char (a loop: cheaper than a regular expression on short strings). */
function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** Latin1 without uppercase, as HTTP/2 requires of names (RFC 7540 8.1.2). */
function isLowercaseLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || (c >= 0x41 && c <= 0x5a)) return false;
  }
  return true;
}

/**
 * encodeHeaderBlock's note per field between its two passes (reused: it calls nothing that
 * could re-enter it): a full static match's index, minus a static name's index, or 0.
 */
let fieldCodes = new Int32Array(16);

/** The octets of an integer with an N-bit prefix. */
function intBytes(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  for (value -= max; value >= 0x80; value = Math.floor(value / 128)) n++;
  return n;
}

function writeInt(out: Buffer, off: number, value: number, prefixBits: number, high: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) { out[off++] = high | value; return off; }
  out[off++] = high | max;
  for (value -= max; value >= 0x80; value = Math.floor(value / 128)) out[off++] = (value & 0x7f) | 0x80;
  out[off++] = value;
  return off;
}

/** Below this length a JS loop copies a string faster than a native Buffer.write call. */
const nativeWriteMinChars = 64;

function writeString(out: Buffer, off: number, s: string): number {
  off = writeInt(out, off, s.length, 7, 0x00);
  if (s.length >= nativeWriteMinChars) return off + out.write(s, off, 'latin1');
  for (let i = 0; i < s.length; i++) out[off++] = s.charCodeAt(i);
  return off;
}

/**
 * A stateless header block: each field as a static-table reference where name and value
 * match (`:status: 200` is the one octet 0x88), else as a literal without indexing, naming
 * a static entry where one has the name, with plain (not Huffman) strings. Nothing enters the
 * client's dynamic table, so the bytes are the same on every connection and may be cached.
 * Names must be lowercase, as HTTP/2 requires, and names and values latin1 (gRPC
 * percent-encodes grpc-message): anything else is a caller's bug and throws a TypeError.
 */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  if (fields.length > fieldCodes.length) fieldCodes = new Int32Array(Math.max(fields.length, fieldCodes.length * 2));
  const codes = fieldCodes;
  let size = 0;
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i]![0];
    const value = fields[i]![1];
    const s = staticByName.get(name);
    // Our own headers: a wrong one is a bug here, not the peer's, and would go out garbled.
    if ((s === undefined && !isLowercaseLatin1(name)) || !isLatin1(value)) throw new TypeError(`encodeHeaderBlock: bad header ${JSON.stringify([name, value])}`);
    const full = s === undefined ? undefined : s.byValue.get(value);
    if (full !== undefined) { codes[i] = full; size += 1; continue; }
    codes[i] = s === undefined ? 0 : -s.nameIndex;
    size += (s === undefined ? 1 + intBytes(name.length, 7) + name.length : intBytes(s.nameIndex, 4))
      + intBytes(value.length, 7) + value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (let i = 0; i < fields.length; i++) {
    const code = codes[i]!;
    if (code > 0) { out[off++] = 0x80 | code; continue; } // indexes 1-61 fit the 7-bit prefix
    if (code < 0) off = writeInt(out, off, -code, 4, 0x00);
    else { out[off++] = 0x00; off = writeString(out, off, fields[i]![0]); }
    off = writeString(out, off, fields[i]![1]);
  }
  if (off !== size) throw new Error(`encodeHeaderBlock: wrote ${off} bytes of ${size}`);
  return out;
}
