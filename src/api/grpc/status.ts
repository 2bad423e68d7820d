/**
 * gRPC status plumbing shared by the server: the status error type handlers may throw,
 * grpc-message percent-encoding and grpc-timeout parsing, as the gRPC-over-HTTP/2 spec
 * (PROTOCOL-HTTP2.md) defines them.
 */
import { EtcdError, GrpcCode } from '../../errors/index.js';

/**
 * A gRPC status raised by the transport itself (deadline, size limit, unknown method).
 * Handlers throw EtcdError for etcd's own errors; this is for grpc-level ones whose
 * wording comes from grpc-go, which etcd clients may match on.
 */
export class GrpcStatusError extends Error {
  constructor(readonly code: GrpcCode, message: string) {
    super(message);
    this.name = 'GrpcStatusError';
  }
}

/** Code and message a thrown value becomes on the wire: EtcdError keeps its own, others are Unknown. */
export function statusOf(err: unknown): [GrpcCode, string] {
  if (err instanceof EtcdError || err instanceof GrpcStatusError) return [err.code, err.message];
  if (err instanceof Error) return [GrpcCode.Unknown, err.message];
  return [GrpcCode.Unknown, String(err)];
}

/**
 * Percent-encodes a grpc-message value: UTF-8 bytes outside 0x20..0x7E, and '%' itself,
 * become %XX. Plain ASCII (every etcd message) returns the same string without allocating.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) { plain = false; break; }
  }
  if (plain) return message;
  let out = '';
  for (const b of Buffer.from(message, 'utf8')) {
    if (b < 0x20 || b > 0x7e || b === 0x25) out += '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
    else out += String.fromCharCode(b);
  }
  return out;
}

const timeoutUnitMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * Parses a grpc-timeout header ("1-8 digits" + unit H M S m u n) into milliseconds.
 * Returns undefined for a malformed value (grpc-go, so etcd, then resets the stream with
 * PROTOCOL_ERROR).
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined || value.length < 2 || value.length > 9) return undefined;
  const unit = timeoutUnitMs[value[value.length - 1]!];
  if (unit === undefined) return undefined;
  const digits = value.slice(0, -1);
  if (!/^\d+$/.test(digits)) return undefined;
  return Number(digits) * unit;
}

/**
 * The status of a request message the method's codec could not decode, worded as grpc-go
 * with gogoproto words it for the common case: a message cut short is "unexpected EOF"
 * (io.ErrUnexpectedEOF), whatever the decoder called it.
 */
export function unmarshalError(err: unknown): GrpcStatusError {
  const msg = err instanceof Error ? err.message : String(err);
  const goMsg = /premature EOF|truncated|out of range/i.test(msg) ? 'unexpected EOF' : msg;
  return new GrpcStatusError(GrpcCode.Internal, `grpc: error unmarshalling request: ${goMsg}`);
}
