/**
 * How grpc-gateway v1 (the version etcd 3.4 vendors) answers: HTTP status of a gRPC code,
 * the error body {"error","message","code"}, the mid-stream error line, and Go's http.Error
 * for unknown routes and methods.
 */
import type http from 'node:http';
import type { GrpcCode } from '../../errors/index.js';

/** grpc-gateway v1's HTTPStatusFromCode (the version etcd 3.4 vendors: FailedPrecondition is 412). */
const httpStatusOfCode = [200, 408, 500, 400, 504, 404, 409, 403, 429, 412, 409, 400, 501, 500, 503, 500, 401];
export const httpStatusOf = (code: GrpcCode): number => httpStatusOfCode[code] ?? 500;

/** Headers of a reply that reached the gRPC service (grpc-gateway forwards its metadata). */
export const calledHeaders = { 'content-type': 'application/json', 'grpc-metadata-content-type': 'application/grpc' } as const;

/** grpc-gateway's mid-stream error object (internal.StreamError in jsonpb's field order). */
export function streamErrorLine(code: GrpcCode, message: string): string {
  const http = httpStatusOf(code);
  return JSON.stringify({ error: { grpc_code: code, http_code: http, message, http_status: statusText(http) } });
}

const statusTexts: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict',
  412: 'Precondition Failed', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented',
  503: 'Service Unavailable', 504: 'Gateway Timeout',
};
const statusText = (status: number): string => statusTexts[status] ?? '';

/**
 * grpc-gateway's DefaultHTTPError. `called`: the error came back from the gRPC call, so the
 * reply carries the call's metadata (and its content-type trailer, as etcd's does).
 */
export function jsonError(res: http.ServerResponse, code: GrpcCode, message: string, called: boolean): void {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify({ error: message, message, code });
  if (!called) {
    res.writeHead(httpStatusOf(code), { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
    return;
  }
  // A failed call is trailers-only in gRPC: its metadata comes back as a trailer, no header.
  res.writeHead(httpStatusOf(code), { 'content-type': 'application/json', trailer: 'Grpc-Trailer-Content-Type' });
  res.write(body);
  res.addTrailers({ 'Grpc-Trailer-Content-Type': 'application/grpc' });
  res.end();
}

/**
 * A server stream's error (grpc-gateway's handleForwardResponseStreamError): the error line
 * ends the stream; before any message, the line is the whole chunked body under the code's
 * HTTP status (the call was trailers-only, so no forwarded metadata).
 */
export function streamError(res: http.ServerResponse, code: GrpcCode, message: string): void {
  if (res.destroyed || res.writableEnded) return;
  if (!res.headersSent) res.writeHead(httpStatusOf(code), { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  res.end(streamErrorLine(code, message));
}

/** Go's http.Error, as grpc-gateway's OtherErrorHandler answers an unknown route or method. */
export function plainError(res: http.ServerResponse, status: number, message: string): void {
  const body = message + '\n';
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

