/**
 * The typed errors of the peer transport. A decoder that meets bytes it cannot accept throws
 * TransportDecodeError; the connection that carried them is closed and nothing else happens.
 */

/** What was wrong with the bytes a peer sent. */
export type DecodeErrorKind =
  | 'exceeds-limit' // a length prefix above the configured bound (etcd: ErrExceedSizeLimit)
  | 'bad-stream-type' // a msgappv2 frame type other than 0, 1, 2
  | 'bad-protobuf'; // the protobuf body did not parse

export class TransportDecodeError extends Error {
  constructor(readonly kind: DecodeErrorKind, message: string) {
    super(message);
    this.name = 'TransportDecodeError';
  }
}

/** etcd's rafthttp.ErrExceedSizeLimit wording. */
export const exceedSizeLimitMessage = 'rafthttp: error limit exceeded';
