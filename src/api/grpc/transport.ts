/**
 * What the gRPC server (server.ts), the paced writer and the h2c HTTP handler need of an
 * HTTP/2 stream and its connection: the small part of node:http2's ServerHttp2Stream they
 * use, so that node's streams and Concord's own HTTP/2 server (api/h2/) both serve them.
 * Node's types satisfy these interfaces structurally; api/h2/stream.ts implements them.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

/**
 * The property a stream carries its gRPC call in: server.ts's shared listeners find the call
 * there. Concord's own streams (api/h2/stream.ts) declare it, so setting it per request adds
 * no property (and no out-of-object property store) to the stream.
 */
export const kCall = Symbol('grpcCall');

/** Request headers: lower-case names, pseudo-headers (":path") included. */
export type StreamHeaders = IncomingHttpHeaders;

export interface RespondOptions {
  /** The HEADERS frame ends the stream (a trailers-only response). */
  endStream?: boolean;
  /** After end(), 'wantTrailers' is emitted and sendTrailers() ends the stream. */
  waitForTrailers?: boolean;
  sendDate?: boolean;
}

/** The connection a stream belongs to. */
export interface H2Session {
  /** The connection's socket (a TLSSocket on https:// URLs: peer certificates, `encrypted`). */
  readonly socket: unknown;
  readonly closed: boolean;
  readonly destroyed: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Events: 'data' (Buffer), 'end' (the client half-closed and every byte was delivered),
 * 'close' (the stream is gone, once), 'error', 'drain' (write() may take more),
 * 'wantTrailers' (after end() with waitForTrailers). Listeners are called with `this` the stream.
 */
export type StreamEvent = 'data' | 'end' | 'close' | 'error' | 'drain' | 'wantTrailers';

export interface H2Stream {
  readonly session: H2Session | undefined;
  readonly headersSent: boolean;
  readonly closed: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  /** RFC 7540 stream state, as nghttp2 numbers it (NGHTTP2_STREAM_STATE_*). */
  readonly state: { readonly state?: number };
  respond(headers: OutgoingHttpHeaders, options?: RespondOptions): void;
  /** Queues bytes; false when the stream's buffer is past its mark ('drain' follows). */
  write(chunk: Buffer | string, callback?: (error?: Error | null) => void): boolean;
  end(chunk?: Buffer | string): unknown;
  sendTrailers(headers: OutgoingHttpHeaders): void;
  /** Resets the stream (RST_STREAM with `code`). */
  close(code?: number): void;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  on(event: StreamEvent, listener: (...args: any[]) => void): unknown;
  once(event: StreamEvent, listener: (...args: any[]) => void): unknown;
  off(event: StreamEvent, listener: (...args: any[]) => void): unknown;
}

/** A server's handler for a new stream. */
export type StreamHandler = (stream: H2Stream, headers: StreamHeaders) => void;
