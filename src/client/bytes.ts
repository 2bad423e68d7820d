// Keys and values travel as bytes; callers may pass strings (UTF-8).

import { prefixRangeEnd } from '../proto/index.js';

export type Bytes = string | Uint8Array;

const empty = Buffer.alloc(0);

export function toBuffer(b: Bytes | undefined): Buffer {
  if (b === undefined) return empty;
  if (typeof b === 'string') return Buffer.from(b);
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The end of the range of every key that starts with prefix (etcd's GetPrefixRangeEnd). */
export const prefixEnd = (prefix: Buffer): Buffer => prefixRangeEnd(prefix);

/** The smallest key after k (for resuming a paginated range). */
export function keyAfter(k: Buffer): Buffer {
  return Buffer.concat([k, Buffer.from([0])]);
}

/** `rangeEnd` for the range options every kv call shares. */
export interface RangeSpec {
  /** Every key that starts with the key. */
  prefix?: boolean;
  /** Every key >= the key. */
  fromKey?: boolean;
  /** Keys in [key, rangeEnd). */
  rangeEnd?: Bytes;
}

/**
 * The [key, rangeEnd) a request sends. As etcd's clientv3: an empty key with prefix means every
 * key ("\0" to "\0"), an empty key with fromKey starts at "\0".
 */
export function rangeOf(key: Buffer, spec: RangeSpec | undefined): [Buffer, Buffer] {
  if (!spec) return [key, empty];
  const set = Number(spec.prefix === true) + Number(spec.fromKey === true) + Number(spec.rangeEnd !== undefined);
  if (set > 1) throw new TypeError('prefix, fromKey and rangeEnd are mutually exclusive');
  if (spec.prefix) return key.length === 0 ? [zero, zero] : [key, prefixEnd(key)];
  if (spec.fromKey) return [key.length === 0 ? zero : key, zero];
  return [key, toBuffer(spec.rangeEnd)];
}

const zero = Buffer.from([0]);
