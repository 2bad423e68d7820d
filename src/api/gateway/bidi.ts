/**
 * A bidi gRPC call as grpc-gateway serves it over HTTP/1.1 (Watch, LeaseKeepAlive): the
 * request body is a sequence of JSON request objects, read as they arrive; the response a
 * chunked stream of {"result":...} lines; a failure after the first line is grpc-gateway's
 * error object on a last line. The services see the same stream shape as over gRPC.
 */
import type http from 'node:http';
import { GrpcCode } from '../../errors/index.js';
import { recordHandled, type GrpcMethodMetrics } from '../../metrics/index.js';
import { GrpcStatusError } from '../grpc/index.js';
import { calledHeaders, jsonError, streamErrorLine } from './replies.js';
import { BadJsonError, maxJsonDepth, messageFromValue, type JsonCodec } from './json.js';

/** A stream's first request and the rest of its body, once the first has decoded. */
export interface OpenedBidi<Req> {
  readonly first: Req | undefined;
  readonly rest: AsyncGenerator<unknown, void, undefined>;
}

/**
 * grpc-gateway decodes the first request before it opens the stream: a bad one is answered
 * here as a plain error (undefined returned) and no call is made.
 */
export async function openJsonBidi<Req>(req: http.IncomingMessage, res: http.ServerResponse, codec: JsonCodec<Req>,
  maxBodyBytes: number): Promise<OpenedBidi<Req> | undefined> {
  const rest = jsonObjects(req, maxBodyBytes);
  try {
    const first = await rest.next();
    return { first: first.done ? undefined : messageFromValue(codec, first.value), rest };
  } catch (e) {
    if (!(e instanceof BadJsonError)) throw e;
    jsonError(res, GrpcCode.Unknown, e.message, false);
    return undefined;
  }
}

/** The call a service drives: requests in, {"result":...} lines out, one status at the end. */
export class JsonBidiCall<Req> {
  cancelled = false;
  private readonly abort = new AbortController();
  private ended = false;
  private readonly startedAtMs = performance.now();

  constructor(
    protected readonly res: http.ServerResponse,
    private readonly codec: JsonCodec<Req>,
    private readonly opened: OpenedBidi<Req>,
    private readonly metrics: GrpcMethodMetrics,
    /** The call's metadata as grpc-gateway forwards it (the Authorization header). */
    readonly headers: { authorization?: string },
  ) {
    metrics.started.inc();
    res.once('close', () => {
      this.cancelled = true;
      this.abort.abort();
      void this.opened.rest.return(undefined);
    });
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** The first request, then the body's next objects until one fails to decode (grpc-gateway stops sending there). */
  async *messages(): AsyncGenerator<Req, void, undefined> {
    if (this.opened.first === undefined) return;
    yield this.opened.first;
    try {
      for await (const v of this.opened.rest) {
        if (this.cancelled) return;
        yield messageFromValue(this.codec, v);
      }
    } catch (e) {
      // The body ends in error when the client goes: the call is cancelled, not failed.
      if (!(e instanceof BadJsonError) && !this.cancelled) throw e;
    }
  }

  /** Writes whole `{"result":...}\n` lines; resolves when the connection can take more. */
  protected writeLines(lines: string): Promise<void> {
    if (this.ended || this.cancelled) return Promise.reject(new GrpcStatusError(GrpcCode.Canceled, 'context canceled'));
    const res = this.res;
    if (!res.headersSent) res.writeHead(200, { ...calledHeaders, 'transfer-encoding': 'chunked' });
    if (res.write(lines)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
      res.once('drain', done);
      res.once('close', done);
    });
  }

  /** Ends the call with the status the service ended it with (counted as grpc_server_handled_total). */
  finish(code: GrpcCode, message: string): void {
    if (this.ended) return;
    this.ended = true;
    recordHandled(this.metrics, code, this.startedAtMs);
    const res = this.res;
    if (res.destroyed) return;
    if (code === GrpcCode.OK) { if (!res.writableEnded) res.end(); return; }
    if (res.headersSent) res.end(streamErrorLine(code, message));
    else jsonError(res, code, message, true);
  }

  /** Runs the service on this call and ends it with the service's outcome. */
  async serve(service: () => Promise<void>): Promise<void> {
    try {
      await service();
      // A stream the HTTP client left counts as Canceled, as grpc-gateway's cancelled call does in etcd.
      if (this.cancelled) this.finish(GrpcCode.Canceled, 'context canceled');
      else this.finish(GrpcCode.OK, '');
    } catch (e) {
      const err = e as { code?: GrpcCode; message: string };
      this.finish(typeof err.code === 'number' ? err.code : GrpcCode.Unknown, err.message);
    }
  }
}

/**
 * The body's top-level JSON objects, one at a time, as they arrive (Go's json.Decoder over
 * the body). Buffered text is bounded by `maxBytes`; anything but an object is refused.
 */
export async function* jsonObjects(req: http.IncomingMessage, maxBytes: number): AsyncGenerator<unknown, void, undefined> {
  let text = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  let scanned = 0;
  for await (const chunk of req) {
    text += (chunk as Buffer).toString('utf8');
    for (let i = scanned; i < text.length; i++) {
      const c = text[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (depth === 0 && start < 0) {
        if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
        if (c !== '{') throw new BadJsonError(`invalid character '${c}' looking for beginning of value`);
        start = i;
      }
      if (c === '"') inString = true;
      else if (c === '{' || c === '[') {
        if (++depth > maxJsonDepth) throw new BadJsonError(`invalid character '${c}' exceeded max depth`);
      }
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) {
          let value: unknown;
          try {
            value = JSON.parse(text.slice(start, i + 1));
          } catch (e) {
            throw new BadJsonError((e as Error).message);
          }
          text = text.slice(i + 1);
          i = -1;
          start = -1;
          yield value;
        }
      }
    }
    scanned = text.length;
    if (text.length > maxBytes) throw new BadJsonError(`request stream larger than ${maxBytes} bytes`);
  }
}
