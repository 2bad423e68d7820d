/** A lean gRPC server on node:http2 (see server.ts for why it exists). */
export { GrpcServer, ServerCall, replyLater } from './server.js';
export type { GrpcServerOptions, MethodKind, UnaryHandler, ServerStreamHandler, BidiHandler } from './server.js';
export { GrpcStatusError, encodeGrpcMessage, parseGrpcTimeout, statusOf, unmarshalError } from './status.js';
export { MessageReader, frameMessage, frameBytes } from './framing.js';
export type { Codec, MessageSink } from './framing.js';
export type { H2Stream, H2Session, StreamHeaders, StreamHandler, StreamEvent, RespondOptions } from './transport.js';
