/**
 * Watch over the gateway, as grpc-gateway streams a bidi call: the request body is a
 * sequence of JSON WatchRequest objects (read as they arrive), the response a chunked stream
 * of {"result":WatchResponse} lines. The stream is served by the same WatchSession as gRPC
 * (watch-service.ts), through an adaptor that turns its framed responses into JSON lines.
 */
import type http from 'node:http';
import { GrpcCode } from '../../errors/index.js';
import { grpcMethodMetrics, recordHandled } from '../../metrics/index.js';
import { etcdserverpb as pb } from '../../proto/index.js';
import { GrpcStatusError } from '../grpc/index.js';
import { serveWatchCall, watchPath, type WatchCall, type WatchServiceOptions } from '../watch-service.js';
import { calledHeaders, jsonError, streamErrorLine } from './replies.js';
import { BadJsonError, maxJsonDepth, messageFromValue, messageToJson } from './json.js';

export interface GatewayWatchOptions extends WatchServiceOptions {
  /** Bytes of one request object at most (and of request text buffered before it is complete). */
  maxBodyBytes: number;
}

/** Looked up per stream: --metrics=extensive is decided after this module loads. */
const metricsOf = () => grpcMethodMetrics(watchPath, 'bidi_stream');

export function serveWatch(req: http.IncomingMessage, res: http.ServerResponse, opts: GatewayWatchOptions, onFailure: (e: unknown) => void): void {
  const requests = jsonObjects(req, opts.maxBodyBytes);
  void (async () => {
    // grpc-gateway decodes the first request before it opens the stream: a bad one is a plain error.
    let first: IteratorResult<unknown>;
    try {
      first = await requests.next();
    } catch (e) {
      jsonError(res, GrpcCode.Unknown, (e as Error).message, false);
      return;
    }
    let firstRequest: pb.WatchRequest | undefined;
    try {
      if (!first.done) firstRequest = messageFromValue(pb.WatchRequest, first.value);
    } catch (e) {
      if (!(e instanceof BadJsonError)) throw e;
      jsonError(res, GrpcCode.Unknown, e.message, false);
      return;
    }
    const call = new JsonWatchCall(res, firstRequest, requests);
    metricsOf().started.inc();
    try {
      await serveWatchCall(call, opts);
      call.finish(GrpcCode.OK, '');
    } catch (e) {
      const err = e as { code?: GrpcCode; message: string };
      call.finish(typeof err.code === 'number' ? err.code : GrpcCode.Unknown, err.message);
    }
  })().catch(onFailure);
}

class JsonWatchCall implements WatchCall {
  readonly headers = {};
  cancelled = false;
  private readonly abort = new AbortController();
  private ended = false;
  private readonly startedAtMs = performance.now();

  constructor(
    private readonly res: http.ServerResponse,
    private readonly first: pb.WatchRequest | undefined,
    private readonly rest: AsyncGenerator<unknown, void, undefined>,
  ) {
    res.once('close', () => {
      this.cancelled = true;
      this.abort.abort();
      void this.rest.return(undefined);
    });
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** The first request, then the body's next objects until one fails to decode (grpc-gateway stops sending there). */
  async *messages(): AsyncGenerator<pb.WatchRequest, void, undefined> {
    if (this.first === undefined) return;
    yield this.first;
    try {
      for await (const v of this.rest) {
        if (this.cancelled) return;
        yield messageFromValue(pb.WatchRequest, v);
      }
    } catch (e) {
      if (!(e instanceof BadJsonError)) throw e;
    }
  }

  /** Takes a buffer of gRPC-framed WatchResponses; writes each as a {"result":...} line. */
  write(framed: Buffer): Promise<void> {
    if (this.ended || this.cancelled) return Promise.reject(new GrpcStatusError(GrpcCode.Canceled, 'context canceled'));
    let lines = '';
    for (let at = 0; at < framed.length;) {
      const n = framed.readUInt32BE(at + 1);
      const message = pb.WatchResponse.decode(framed.subarray(at + 5, at + 5 + n));
      lines += `{"result":${messageToJson(pb.WatchResponse, message)}}\n`;
      at += 5 + n;
    }
    const res = this.res;
    if (!res.headersSent) res.writeHead(200, { ...calledHeaders, 'transfer-encoding': 'chunked' });
    if (res.write(lines)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
      res.once('drain', done);
      res.once('close', done);
    });
  }

  finish(code: GrpcCode, message: string): void {
    if (this.ended) return;
    this.ended = true;
    recordHandled(metricsOf(), code, this.startedAtMs);
    const res = this.res;
    if (res.destroyed) return;
    if (code === GrpcCode.OK) { if (!res.writableEnded) res.end(); return; }
    if (res.headersSent) res.end(streamErrorLine(code, message));
    else jsonError(res, code, message, true);
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
    if (text.length > maxBytes) throw new BadJsonError(`watch request larger than ${maxBytes} bytes`);
  }
}
