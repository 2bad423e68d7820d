/**
 * One listening port for gRPC (HTTP/2 cleartext) and plain HTTP/1.1, as etcd serves both on
 * its client URL with cmux. Each new connection is peeked: the HTTP/2 client preface
 * ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") sends it to the http2 server, anything else to the
 * http.Server. The peeked bytes are put back (`unshift`) before the hand-off; both node
 * servers read bytes already buffered on the socket.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

import type { Logger } from '../log/index.js';
import { AuthorityRewritingSocket, clientPreface as preface, emptySettingsFrame, goawayFrame } from './h2-authority.js';
import { ErrorCode } from './h2/frames.js';
import { HandshakeBuffer } from './h2-handshake.js';
import { httpsWithoutCertMessage, type ClientTls } from './tls.js';
import { Connection } from './h2/connection.js';
import type { StreamHandler } from './grpc/transport.js';
import { defaultKeepalive, keepSessionAlive, type KeepaliveOptions } from './keepalive.js';

/**
 * How long a new HTTP/2 connection may stay without a request before it is handed to
 * node:http2 unexamined. Generous on purpose: etcd's Go clients send their (possibly
 * URL-shaped) first request right after the handshake, but on a loaded machine "right after"
 * has taken more than 50 ms, and a request that misses the window is refused. Waiting costs
 * an idle client nothing: it has sent nothing that wants an answer (see handOverNow).
 */
const firstRequestWaitMs = 5_000;

export interface ListenerOptions {
  onStream: StreamHandler;
  /**
   * Which HTTP/2 server takes the client's connections: Concord's own (api/h2/), which needs no
   * look at the first request, or node:http2 (CONCORD_H2=node). Callers pass it; absent means node.
   */
  h2Server?: 'node' | 'own';
  onRequest: http.RequestListener;
  /**
   * Takes every connection that is not HTTP/2 whole, instead of this listener's http.Server
   * (the worker-thread API mode relays them to the main thread: worker.ts, h1-relay.ts).
   * The peeked bytes are back on the socket; it is resumed after this returns.
   */
  onHttp1Connection?: (socket: net.Socket) => void;
  /** A connection not classified (HTTP/1.1) or through its HTTP/2 handshake by then is dropped. */
  peekTimeoutMs?: number;
  /** Bytes a connection may send before it is classified and handed over; past it, it is dropped. */
  maxHandshakeBytes?: number;
  log?: Logger;
  /** Memory nghttp2 may hold per session before refusing new streams (node's default is 10 MiB). */
  maxSessionMemoryMiB?: number;
  /** Client TLS, required for https:// URLs (http:// URLs ignore it, as etcd does). */
  tls?: ClientTls;
  /** Server pings and the client ping policy (--grpc-keepalive-*); etcd's defaults if absent. */
  keepalive?: KeepaliveOptions;
  /** --max-concurrent-streams: HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (default 2^32-1). */
  maxConcurrentStreams?: number;
}

export class ClientListener {
  readonly h2: http2.Http2Server;
  readonly h1: http.Server;
  private readonly servers: Array<net.Server | tls.Server> = [];
  private readonly sessions = new Set<http2.ServerHttp2Session | Connection>();
  private readonly ownH2: { onStream: StreamHandler; keepalive: KeepaliveOptions; maxConcurrentStreams: number } | undefined;
  private readonly undecided = new Set<net.Socket>();
  private readonly peekTimeoutMs: number;
  private readonly maxHandshakeBytes: number;
  private readonly log: Logger | undefined;
  private readonly tls: ClientTls | undefined;
  private readonly onHttp1Connection: ((socket: net.Socket) => void) | undefined;

  constructor(opts: ListenerOptions) {
    this.tls = opts.tls;
    this.onHttp1Connection = opts.onHttp1Connection;
    const keepalive = opts.keepalive ?? defaultKeepalive;
    this.peekTimeoutMs = opts.peekTimeoutMs ?? 10_000;
    this.maxHandshakeBytes = opts.maxHandshakeBytes ?? 256 * 1024;
    this.log = opts.log;
    this.h2 = http2.createServer({
      maxSessionMemory: opts.maxSessionMemoryMiB ?? 64,
      // A 1 MiB stream window lets a max-size request (1.5 MiB by default) arrive in two
      // round trips instead of ~25 at the 64 KiB default.
      // A client past maxConcurrentStreams waits for one of its streams to end (grpc-go and
      // nghttp2 queue the request), as with etcd's grpc.MaxConcurrentStreams.
      settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: opts.maxConcurrentStreams ?? 0xffffffff },
    });
    this.h2.on('stream', opts.onStream);
    this.h2.on('session', (session) => {
      // Connection-level window to match the stream window (the spec fixes the initial one at 64 KiB).
      session.on('connect', () => { try { session.setLocalWindowSize(1 << 24); } catch { /* closed */ } });
      session.on('error', () => { /* the socket went away; 'close' follows */ });
      keepSessionAlive(session, keepalive);
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    this.h1 = http.createServer({ keepAliveTimeout: 5000 }, opts.onRequest);
    if (opts.h2Server === 'own') this.ownH2 = { onStream: opts.onStream, keepalive, maxConcurrentStreams: opts.maxConcurrentStreams ?? 0xffffffff };
  }

  /** Starts listening on an http:// or https:// URL; resolves to the URL actually bound (port 0 becomes the real port). */
  async listen(url: URL): Promise<URL> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported client URL scheme ${url.protocol}`);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    const server = url.protocol === 'https:' ? this.tlsServer(url) : net.createServer({ noDelay: true }, (socket) => this.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => { server.off('error', reject); resolve(); });
    });
    this.servers.push(server);
    const addr = server.address() as net.AddressInfo;
    const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return new URL(`${url.protocol}//${shown}:${addr.port}`);
  }

  /**
   * A TLS server whose decrypted connections take the same path as plain ones (the same peek,
   * bounds and hand-off). Handshakes are bounded in time by node's handshakeTimeout.
   */
  private tlsServer(url: URL): tls.Server {
    const clientTls = this.tls;
    if (clientTls === undefined) {
      throw new Error(httpsWithoutCertMessage(url.toString().replace(/\/$/, '')));
    }
    const server = tls.createServer({ ...clientTls.serverOptions(), handshakeTimeout: this.peekTimeoutMs }, (socket) => {
      const problem = clientTls.problem(socket);
      if (problem !== undefined) {
        this.rejected(socket, problem);
        socket.destroy();
        return;
      }
      socket.setNoDelay(true);
      this.onConnection(socket);
    });
    server.on('connection', () => clientTls.refresh(server));
    server.on('tlsClientError', (err, socket) => this.rejected(socket, err.message));
    return server;
  }

  /** etcd's log line for a refused TLS client (embed/config_logging.go). */
  private rejected(socket: tls.TLSSocket, error: string): void {
    this.log?.warn('rejected connection', {
      'remote-addr': `${socket.remoteAddress}:${socket.remotePort}`,
      'server-name': (socket as { servername?: string | false }).servername || '',
      error,
    });
  }

  private onConnection(socket: net.Socket): void {
    const start = new HandshakeBuffer(this.maxHandshakeBytes);
    let h2Started = false;
    let firstRequestTimer: ReturnType<typeof setTimeout> | undefined;
    this.undecided.add(socket);
    const onError = (): void => { socket.destroy(); };
    const onData = (chunk: Buffer): void => {
      // Per-connection code: whatever goes wrong here ends this connection only.
      try {
        takeChunk(chunk);
      } catch (e) {
        this.log?.warn('closing client connection after an error reading its first bytes', { error: String(e) });
        socket.destroy();
      }
    };
    const takeChunk = (chunk: Buffer): void => {
      if (!start.push(chunk)) {
        // A real client's preface, SETTINGS and first requests are a few KiB.
        detach();
        // Say why, then close once that is flushed (the socket no longer reads, so it must not linger).
        socket.end(goawayFrame(0, ErrorCode.enhanceYourCalm));
        socket.destroySoon();
        return;
      }
      if (!h2Started) {
        if (!start.matchesPreface()) { dispatchH1(); return; }
        if (start.length < preface.length) return; // a prefix of the preface so far
        if (this.ownH2 !== undefined) { dispatchOwnH2(); return; }
        // HTTP/2: answer the preface ourselves and look at the first request (h2-authority.ts).
        h2Started = true;
        socket.write(emptySettingsFrame);
        firstRequestTimer = setTimeout(() => { firstRequestTimer = undefined; onData(Buffer.alloc(0)); },
          Math.min(firstRequestWaitMs, this.peekTimeoutMs / 2));
      }
      start.scan();
      // Our SETTINGS must be acknowledged before hand-off (nghttp2 would reject that ACK),
      // and we wait briefly for the first request to see its authority.
      if (start.ack === undefined || (start.headersEnd === undefined && !start.handOverNow && firstRequestTimer !== undefined)) return;
      dispatchH2();
    };
    // Bounded in time as a whole, not per read: a client dribbling a byte a second gets no longer.
    const deadline = setTimeout(() => socket.destroy(), this.peekTimeoutMs);
    const detach = (): void => {
      socket.pause();
      socket.off('data', onData);
      socket.off('error', onError);
      clearTimeout(deadline);
      if (firstRequestTimer) clearTimeout(firstRequestTimer);
      this.undecided.delete(socket);
    };
    const dispatchH1 = (): void => {
      detach();
      socket.unshift(Buffer.from(start.bytes));
      if (this.onHttp1Connection) this.onHttp1Connection(socket);
      else this.h1.emit('connection', socket);
      socket.resume();
    };
    const dispatchH2 = (): void => {
      detach();
      const b = start.bytes;
      const ack = start.ack!;
      const rest = Buffer.concat([b.subarray(0, ack.start), b.subarray(ack.end)]);
      if (start.badAuthority) {
        this.h2.emit('connection', new AuthorityRewritingSocket(socket, rest));
        socket.resume();
        return;
      }
      socket.unshift(rest);
      // The session reads the unshifted bytes itself on its next tick; resuming here would
      // flow them out as 'data' to nobody first (grpc-go then sees "bad client magic").
      this.h2.emit('connection', socket);
    };
    const dispatchOwnH2 = (): void => {
      detach();
      const own = this.ownH2!;
      const conn = new Connection(socket, Buffer.from(start.bytes), {
        onStream: own.onStream, maxConcurrentStreams: own.maxConcurrentStreams, keepalive: own.keepalive,
        maxBytesBeforeSettingsAck: this.maxHandshakeBytes, settingsTimeoutMs: this.peekTimeoutMs,
        ...(this.log ? { log: this.log } : {}),
      });
      this.sessions.add(conn);
      conn.once('close', () => this.sessions.delete(conn));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('close', () => {
      this.undecided.delete(socket);
      clearTimeout(deadline);
      if (firstRequestTimer) clearTimeout(firstRequestTimer);
    });
  }

  /**
   * Stops accepting connections, asks HTTP/2 clients to go away (GOAWAY lets in-flight
   * streams finish) and waits for them up to `graceMs`, then destroys what is left.
   */
  async close(graceMs: number): Promise<void> {
    for (const s of this.servers) s.close();
    for (const s of this.undecided) s.destroy();
    this.h1.close();
    this.h1.closeIdleConnections();
    const sessionsClosed = [...this.sessions].map((session) => new Promise<void>((resolve) => {
      if (session.closed || session.destroyed) { resolve(); return; }
      session.once('close', () => resolve());
      session.close();
    }));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), graceMs); });
    const done = await Promise.race([Promise.all(sessionsClosed).then(() => false), timedOut]);
    clearTimeout(timer);
    if (done) {
      for (const session of this.sessions) session.destroy();
    }
    this.h1.closeAllConnections();
  }
}
