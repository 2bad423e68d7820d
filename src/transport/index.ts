/**
 * transport/: etcd 3.4's peer protocol (rafthttp) over node:http. The member (server/)
 * creates one PeerTransport, routes its peer listener's requests to handle(), tells it the
 * peers, sends raft's messages through it and receives theirs through TransportHandlers.
 */
export { PeerTransport } from './transport.js';
export type { TransportHandlers, TransportOptions, SnapshotOutcome, StreamKind } from './types.js';
export type { LocalIdentity } from './headers.js';
export type { SnapshotToSend } from './snapshot-sender.js';
export { idString, parseId, checkCompatibility, requestHeaders, minClusterVersion } from './headers.js';
export { StreamMessageDecoder, encodeStreamMessage, isLinkHeartbeat, defaultMaxMessageBytes } from './message-codec.js';
export { MsgAppV2Encoder, MsgAppV2Decoder } from './msgappv2-codec.js';
export { TransportDecodeError } from './errors.js';
export type { DecodeErrorKind } from './errors.js';
export { streamBufSize } from './stream-writer.js';
export { pipelineBufSize, connPerPipeline } from './pipeline.js';
export { streamPath } from './stream-reader.js';
export { peerRequest } from './dial.js';
export type { PeerClientTls } from './dial.js';

/** The peer listener's bounded body reader and plain-text error answer, for the member's other peer routes (/leases). */
export { readBody as readPeerBody, httpError as peerHttpError } from './peer-handler.js';
