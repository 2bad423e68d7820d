/**
 * The wire type gogoproto's generated Unmarshal requires of each known field of the KV
 * requests (etcd 3.4's etcdserverpb/rpc.pb.go), and which fields hold a nested message: what
 * wireShapeError checks beside the framing, so a request etcd refuses ("proto: wrong
 * wireType = 0 for field Value", "proto: RequestOp: illegal tag 0 (wire type 0)") is refused
 * here with the same text. The generated TypeScript codec skips a known field sent with
 * another wire type and stops at a nested tag of 0: the request went through with the field
 * left at its default, and the put fast path wrote the client's bytes, malformed, into the
 * WAL, where an etcd member sharing the cluster fails to unmarshal the entry and panics.
 * Messages not listed here are walked for framing only.
 */

export type WireType = 0 | 1 | 2 | 5;

export interface FieldRule {
  /** The Go field name gogo's error names. */
  readonly name: string;
  readonly wire: WireType;
  /** For a nested message: its name, whose own rules apply to the payload. */
  readonly message?: string;
}

const VARINT = 0;
const LEN = 2;

const rule = (name: string, wire: WireType, message?: string): FieldRule => (message === undefined ? { name, wire } : { name, wire, message });

export const wireRules: ReadonlyMap<string, ReadonlyMap<number, FieldRule>> = new Map<string, Map<number, FieldRule>>([
  ['RangeRequest', new Map([
    [1, rule('Key', LEN)], [2, rule('RangeEnd', LEN)], [3, rule('Limit', VARINT)], [4, rule('Revision', VARINT)],
    [5, rule('SortOrder', VARINT)], [6, rule('SortTarget', VARINT)], [7, rule('Serializable', VARINT)],
    [8, rule('KeysOnly', VARINT)], [9, rule('CountOnly', VARINT)], [10, rule('MinModRevision', VARINT)],
    [11, rule('MaxModRevision', VARINT)], [12, rule('MinCreateRevision', VARINT)], [13, rule('MaxCreateRevision', VARINT)],
  ])],
  ['PutRequest', new Map([
    [1, rule('Key', LEN)], [2, rule('Value', LEN)], [3, rule('Lease', VARINT)], [4, rule('PrevKv', VARINT)],
    [5, rule('IgnoreValue', VARINT)], [6, rule('IgnoreLease', VARINT)],
  ])],
  ['DeleteRangeRequest', new Map([[1, rule('Key', LEN)], [2, rule('RangeEnd', LEN)], [3, rule('PrevKv', VARINT)]])],
  ['RequestOp', new Map([
    [1, rule('RequestRange', LEN, 'RangeRequest')], [2, rule('RequestPut', LEN, 'PutRequest')],
    [3, rule('RequestDeleteRange', LEN, 'DeleteRangeRequest')], [4, rule('RequestTxn', LEN, 'TxnRequest')],
  ])],
  ['Compare', new Map([
    [1, rule('Result', VARINT)], [2, rule('Target', VARINT)], [3, rule('Key', LEN)], [4, rule('Version', VARINT)],
    [5, rule('CreateRevision', VARINT)], [6, rule('ModRevision', VARINT)], [7, rule('Value', LEN)],
    [8, rule('Lease', VARINT)], [64, rule('RangeEnd', LEN)],
  ])],
  ['TxnRequest', new Map([
    [1, rule('Compare', LEN, 'Compare')], [2, rule('Success', LEN, 'RequestOp')], [3, rule('Failure', LEN, 'RequestOp')],
  ])],
  ['CompactionRequest', new Map([[1, rule('Revision', VARINT)], [2, rule('Physical', VARINT)]])],
]);
