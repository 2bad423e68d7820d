/**
 * Protobuf messages as grpc-gateway v1's JSONPb{OrigName: true} writes and reads them, over
 * the generated codecs' toJSON/fromJSON: field names as in the .proto (snake_case, or the
 * camelCase etcd's protos spell, e.g. `dbSize`, `peerURLs`, `ID`), 64-bit integers as
 * strings, uint32 `hash` as a number, bytes as standard base64, enums by name, default
 * values omitted. Request JSON is hostile: bytes fields are checked as Go's base64 decoder
 * checks them, numbers must come out as integers, before anything is encoded.
 */
import type { Codec } from '../grpc/index.js';

/** A generated codec with the JSON half ts-proto writes. */
export interface JsonCodec<T> extends Codec<T> {
  fromJSON(object: unknown): T;
  toJSON(message: T): unknown;
}

/** A request JSON the gateway refuses (grpc-gateway answers InvalidArgument with `message`). */
export class BadJsonError extends Error {}

/** Field names whose .proto spelling is not snake_case (the generated JSON key maps to them unchanged). */
const protoCamelNames = new Set([
  'ID', 'TTL', 'grantedTTL', 'RemainingTTL', 'dbSize', 'dbSizeInUse', 'raftIndex', 'raftTerm',
  'raftAppliedIndex', 'memberID', 'targetID', 'peerURLs', 'clientURLs', 'isLearner', 'keyPermission', 'permType',
]);
/** Generated JSON keys whose .proto name mixes both styles. */
const irregularNames: Record<string, string> = { remainingTTL: 'remaining_TTL' };
/** uint32 fields: jsonpb writes them as numbers. Every other integer field of etcd's protos is 64-bit. */
const uint32Names = new Set(['hash']);
/** bytes fields of etcd's requests (as the generated JSON and the .proto spell them). */
const bytesNames = new Set(['key', 'range_end', 'rangeEnd', 'value', 'keys']);

const snake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/** The .proto name of a generated JSON key; `inHeader`: ResponseHeader's raft_term, not Status's raftTerm. */
function protoName(key: string, inHeader: boolean): string {
  if (!inHeader && protoCamelNames.has(key)) return key;
  return irregularNames[key] ?? snake(key);
}

/** ts-proto's JSON → jsonpb's: renamed keys, 64-bit numbers as strings. */
function toGatewayJson(v: unknown, key: string, inHeader: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => toGatewayJson(x, key, inHeader));
  if (typeof v === 'number') return uint32Names.has(key) ? v : String(v);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    out[protoName(k, inHeader)] = toGatewayJson(x, k, k === 'header');
  }
  return out;
}

/** A response message as etcd's gateway writes it. */
export function messageToJson<T>(codec: JsonCodec<T>, message: T): string {
  return JSON.stringify(toGatewayJson(codec.toJSON(message), '', false));
}

const isB64 = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
const isNewline = (c: number): boolean => c === 10 || c === 13;

/**
 * Where Go's base64.StdEncoding.DecodeString fails on `s` (its CorruptInputError offset), or
 * -1 if it decodes. Go's decodeQuantum, step for step: newlines are skipped, padding must
 * complete the last quantum, nothing may follow it.
 */
export function base64ErrorOffset(s: string): number {
  let si = 0;
  while (si < s.length) {
    for (let j = 0; j < 4; j++) {
      if (si === s.length) return j === 0 ? -1 : si - j;
      const c = s.charCodeAt(si++);
      if (isB64(c)) continue;
      if (isNewline(c)) { j--; continue; }
      if (c !== 61 /* = */ || j < 2) return si - 1;
      if (j === 2) {
        while (si < s.length && isNewline(s.charCodeAt(si))) si++;
        if (si === s.length) return s.length;
        if (s.charCodeAt(si) !== 61) return si - 1;
        si++;
      }
      while (si < s.length && isNewline(s.charCodeAt(si))) si++;
      return si < s.length ? si : -1;
    }
  }
  return -1;
}

/** Go's encoding/json nesting limit; deeper input is refused with its message. */
export const maxJsonDepth = 10_000;

/** Refuses JSON text nested deeper than Go accepts, before anything parses or walks it. */
export function checkDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > maxJsonDepth) throw new BadJsonError(`invalid character '${text[i]}' exceeded max depth`);
    } else if (c === 125 || c === 93) depth--;
  }
}

/** Every object and array under `root` (iteratively: hostile input may nest deep). */
function* containers(root: unknown): Generator<object> {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) continue;
    yield v;
    for (const x of Object.values(v)) if (x !== null && typeof x === 'object') stack.push(x);
  }
}

function checkBytesFields(root: unknown): void {
  for (const o of containers(root)) {
    if (Array.isArray(o)) continue;
    for (const [k, x] of Object.entries(o)) {
      if (!bytesNames.has(k) || !(typeof x === 'string' || typeof x === 'number' || Array.isArray(x))) continue;
      for (const s of Array.isArray(x) ? x : [x]) {
        if (typeof s !== 'string') throw new BadJsonError(`json: cannot unmarshal ${typeof s} into Go value of type []uint8`);
        const at = base64ErrorOffset(s);
        if (at >= 0) throw new BadJsonError(`illegal base64 data at input byte ${at}`);
      }
    }
  }
}

/** Every number of a decoded message must be an integer (a non-numeric "limit" comes out NaN). */
function checkNumbers(root: unknown): void {
  for (const o of containers(root)) {
    for (const x of Object.values(o)) {
      if (typeof x === 'number' && !Number.isSafeInteger(x)) throw new BadJsonError(`invalid value ${x} for an integer field`);
    }
  }
}

/** Parses one request body (empty = the empty message, as grpc-gateway takes io.EOF) into its message. */
export function messageFromJson<T>(codec: JsonCodec<T>, body: string): T {
  let parsed: unknown = {};
  if (body.trim() !== '') {
    checkDepth(body);
    try {
      parsed = JSON.parse(body);
    } catch (e) {
      throw new BadJsonError((e as Error).message);
    }
  }
  return messageFromValue(codec, parsed);
}

/** A request message from an already parsed JSON value (a watch stream's next object). */
export function messageFromValue<T>(codec: JsonCodec<T>, parsed: unknown): T {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new BadJsonError(`json: cannot unmarshal ${Array.isArray(parsed) ? 'array' : typeof parsed} into Go value of type map[string]json.RawMessage`);
  }
  checkBytesFields(parsed);
  let message: T;
  try {
    message = codec.fromJSON(parsed);
  } catch (e) {
    throw new BadJsonError((e as Error).message); // e.g. BigInt("x") for an id
  }
  checkNumbers(message);
  return message;
}
