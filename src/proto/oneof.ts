/**
 * A oneof keeps one member: the last one on the wire, as gogoproto's Unmarshal does (each
 * member's case assigns the whole union). ts-proto, generating each member as an optional
 * field of its own, keeps every member it reads, and the code that used the message took the
 * first in field order. So a Txn whose RequestOp carried a put and then a delete ran the
 * delete on etcd and the put on Concord, and a Compare with a value and then a version
 * compared the key's value with the value on Concord, with nothing on etcd (compareKV reads
 * the union only through the member its target names). A hostile client could make a mixed
 * cluster's members apply one entry two ways, and the answer differed from etcd's anyway.
 *
 * The decoders below replace the generated ones of the messages with a oneof that a server
 * decodes from a client or the log (RequestOp, Compare, WatchRequest): every path, the
 * generated TxnRequest and InternalRaftRequest decoders included, goes through the codec
 * object, so they are installed on it once, from proto/index.ts. They read each field as the
 * generated decoder does (same reader calls, same nesting limit on the shared reader) and
 * clear the other members when one is read. The in-place txn decoder
 * (server/request-codec.ts) follows the same rule with `keepOnly`.
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import {
  Compare, Compare_CompareResult, Compare_CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
  WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
} from './gen/etcdserverpb/rpc.js';

/**
 * ts-proto's nesting limit: message levels one decode may enter (each generated decoder
 * counts its level on the reader it shares with the nested ones). The hand decoders
 * (server/request-codec.ts) keep the same limit with checkDecodeDepth.
 */
export const maxDecodeDepth = 100;
type DepthReader = BinaryReader & { __tsProtoDecodeDepth?: number };

/** Throws ts-proto's error for a message at `depth` levels (0: the outermost) past the limit. */
export function checkDecodeDepth(depth: number): void {
  if (depth >= maxDecodeDepth) throw new Error('protobuf decode recursion limit exceeded');
}

/** Runs `body` one message level deeper on `reader`, as every generated decoder does. */
function nested<T>(input: BinaryReader | Uint8Array, body: (reader: BinaryReader) => T): T {
  const reader = (input instanceof BinaryReader ? input : new BinaryReader(input)) as DepthReader;
  const depth = reader.__tsProtoDecodeDepth ?? 0;
  checkDecodeDepth(depth);
  reader.__tsProtoDecodeDepth = depth + 1;
  try {
    return body(reader);
  } finally {
    reader.__tsProtoDecodeDepth = depth;
  }
}

/** Where a generated decoder stops reading a message: an end-group tag or a tag of 0. */
const stops = (tag: number): boolean => (tag & 7) === 4 || tag === 0;

/** Sets `key` on `m` and clears every other member of the oneof `members`. */
export function keepOnly<T, K extends keyof T>(m: T, members: readonly (keyof T)[], key: K, value: T[K]): void {
  for (const k of members) m[k] = undefined as T[typeof k];
  m[key] = value;
}

/** RequestOp's oneof `request`, in field order. */
export const requestOpMembers = ['requestRange', 'requestPut', 'requestDeleteRange', 'requestTxn'] as const satisfies readonly (keyof RequestOp)[];

/** A field's codec: how the generated decoders read a nested message. */
interface Nested<V> { decode(reader: BinaryReader, length: number): V }

/**
 * The decoder of a message that is only a oneof of nested messages, fields 1..n in the order
 * of `members` (RequestOp, WatchRequest): each member read replaces the others.
 */
function messagesOneof<T extends object>(members: ReadonlyArray<readonly [keyof T, Nested<unknown>]>, empty: () => T) {
  const names = members.map(([name]) => name);
  return (input: BinaryReader | Uint8Array, length?: number): T => nested(input, (reader) => {
    const end = length === undefined ? reader.len : reader.pos + length;
    const m = empty();
    while (reader.pos < end) {
      const tag = reader.uint32();
      const member = (tag & 7) === 2 ? members[(tag >>> 3) - 1] : undefined;
      if (member !== undefined) {
        keepOnly(m, names, member[0], member[1].decode(reader, reader.uint32()) as T[keyof T]);
        continue;
      }
      if (stops(tag)) break;
      reader.skip(tag & 7);
    }
    return m;
  });
}

const decodeRequestOp = messagesOneof<RequestOp>(
  [['requestRange', RangeRequest], ['requestPut', PutRequest], ['requestDeleteRange', DeleteRangeRequest], ['requestTxn', TxnRequest]],
  () => ({ requestRange: undefined, requestPut: undefined, requestDeleteRange: undefined, requestTxn: undefined }),
);

const compareMembers = ['version', 'createRevision', 'modRevision', 'value', 'lease'] as const satisfies readonly (keyof Compare)[];

function decodeCompare(input: BinaryReader | Uint8Array, length?: number): Compare {
  return nested(input, (reader) => {
    const end = length === undefined ? reader.len : reader.pos + length;
    const m: Compare = {
      result: 0, target: 0, key: Buffer.alloc(0), version: undefined, createRevision: undefined,
      modRevision: undefined, value: undefined, lease: undefined, rangeEnd: Buffer.alloc(0),
    };
    while (reader.pos < end) {
      const tag = reader.uint32();
      switch (tag) {
        case 1 << 3: m.result = reader.int32() as Compare_CompareResult; continue;
        case 2 << 3: m.target = reader.int32() as Compare_CompareTarget; continue;
        case (3 << 3) | 2: m.key = Buffer.from(reader.bytes()); continue;
        case 4 << 3: keepOnly(m, compareMembers, 'version', reader.int64() as bigint); continue;
        case 5 << 3: keepOnly(m, compareMembers, 'createRevision', reader.int64() as bigint); continue;
        case 6 << 3: keepOnly(m, compareMembers, 'modRevision', reader.int64() as bigint); continue;
        case (7 << 3) | 2: keepOnly(m, compareMembers, 'value', Buffer.from(reader.bytes())); continue;
        case 8 << 3: keepOnly(m, compareMembers, 'lease', reader.int64() as bigint); continue;
        case (64 << 3) | 2: m.rangeEnd = Buffer.from(reader.bytes()); continue;
      }
      if (stops(tag)) break;
      reader.skip(tag & 7);
    }
    return m;
  });
}

const decodeWatchRequest = messagesOneof<WatchRequest>(
  [['createRequest', WatchCreateRequest], ['cancelRequest', WatchCancelRequest], ['progressRequest', WatchProgressRequest]],
  () => ({ createRequest: undefined, cancelRequest: undefined, progressRequest: undefined }),
);

/** Puts the decoders above on the generated codec objects (proto/index.ts, before any decode). */
export function installOneofDecoders(): void {
  RequestOp.decode = decodeRequestOp;
  Compare.decode = decodeCompare;
  WatchRequest.decode = decodeWatchRequest;
}
