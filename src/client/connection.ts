// The client's connections: one gRPC channel per endpoint, the endpoint in use, failover,
// per-call deadlines and cancellation, and the auth token each endpoint issued.
//
// Failover rule: before a call, the endpoint in use must be connected (a synchronous state
// check on the hot path); if it is not, the others are tried in turn, each for at most the dial
// timeout. A call whose connection breaks after it was sent is sent again elsewhere only when
// its Rpc is `retriable` (a Put may have been applied, so it is not): the caller gets the error.
// Tokens are per endpoint because etcd's simple tokens are known to the member that issued them.
import * as grpc from '@grpc/grpc-js';
import type { Rpc } from './rpcs.js';
import { Auth } from './rpcs.js';
import {
  errorFromStatus, isTransportFailure, EtcdErrors, DeadlineExceededError, NoAvailableEndpointError,
} from './errors.js';

export interface TlsOptions {
  /** PEM of the CA that signed the servers' certificates (default: the system's roots). */
  ca?: Buffer;
  /** PEM client certificate and key, for servers that ask for one. */
  cert?: Buffer;
  key?: Buffer;
}

export interface ConnectionOptions {
  /** `http://host:port`, `https://host:port` or `host:port` (TLS when https or `tls` is set). */
  endpoints: readonly string[];
  /** How long to wait for one endpoint to connect before trying the next (default 2,000 ms, etcdctl's). */
  dialTimeoutMs?: number;
  /** Deadline for a call that gives none (default: none). */
  defaultCallTimeoutMs?: number;
  /** User and password: the client authenticates, and again when a token is refused. */
  auth?: Credentials;
  /**
   * Told of an error the client answers itself instead of failing the call: today a server's
   * "authentication is not enabled" to Authenticate, after which calls go without a token (as
   * clientv3's). Tools that log each failed RPC (concordctl) log it here.
   */
  onIgnoredError?: (error: unknown) => void;
  tls?: TlsOptions;
  /** Largest message the client receives (default 64 MiB) and sends (default 2 MiB, etcd's request limit + margin). */
  maxReceiveMessageBytes?: number;
  maxSendMessageBytes?: number;
  /** HTTP/2 receive window, per stream and for the connection (default FLOW_CONTROL_WINDOW_BYTES). */
  flowControlWindowBytes?: number;
}

/**
 * The receive window the client grants: how much a server may send ahead of what the client
 * has read. HTTP/2's default, 64 KiB, is two 32 KiB snapshot chunks: a save then moves 64 KiB
 * per round trip through both event loops (~12 MB/s on a loaded machine). grpc-go (etcdctl)
 * grows its window by bandwidth-delay estimation up to 16 MiB; grpc-js does not estimate, so
 * a fixed window large enough for a local stream stands in for it.
 */
export const FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * A user's name and password. The password may come from a function, asked once, on the first
 * call (a prompt, a secret store). An empty password means no login at all, as clientv3: a user
 * without a password is known by its TLS client certificate.
 */
export interface Credentials {
  username: string;
  password: string | (() => Promise<string>);
}

/** Options every call takes. */
export interface CallOptions {
  /** Fail with DeadlineExceededError after this long (overrides defaultCallTimeoutMs). */
  timeoutMs?: number;
  /** Cancel the call; it rejects with signal.reason. */
  signal?: AbortSignal;
}

const READY = grpc.connectivityState.READY;

export class Endpoint {
  readonly client: grpc.Client;
  /** Metadata carrying this endpoint's token (or none); replaced when the token changes. */
  metadata = new grpc.Metadata();
  /** Logged in: a token is in metadata, or the login found none is needed. */
  loggedIn = false;

  constructor(readonly url: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) {
    this.client = new grpc.Client(url.replace(/^(https?|unix):\/\//, ''), credentials, options);
  }

  isReady(): boolean {
    return this.client.getChannel().getConnectivityState(true) === READY;
  }

  waitReady(untilMs: number): Promise<boolean> {
    return new Promise((resolve) => this.client.waitForReady(untilMs, (err) => resolve(!err)));
  }

  setToken(token: string | undefined, loggedIn = token !== undefined): void {
    this.metadata = new grpc.Metadata();
    if (token !== undefined) this.metadata.set('token', token);
    this.loggedIn = loggedIn;
  }
}

/** The wall-clock time a call must end by, or undefined for none. */
export function deadlineOf(opts: CallOptions | undefined, fallbackMs: number | undefined): number | undefined {
  const ms = opts?.timeoutMs ?? fallbackMs;
  return ms === undefined ? undefined : Date.now() + ms;
}

export class Connection {
  readonly endpoints: readonly Endpoint[];
  private current = 0;
  private closed = false;
  /** The password, once known (a function's answer is asked for once). */
  private password: Promise<string> | undefined;
  readonly dialTimeoutMs: number;

  constructor(readonly options: ConnectionOptions) {
    if (options.endpoints.length === 0) throw new TypeError('at least one endpoint is required');
    this.dialTimeoutMs = options.dialTimeoutMs ?? 2000;
    const secure = options.tls !== undefined || options.endpoints.some((e) => e.startsWith('https://'));
    const credentials = secure
      ? grpc.credentials.createSsl(options.tls?.ca ?? null, options.tls?.key ?? null, options.tls?.cert ?? null)
      : grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? 64 * 1024 * 1024,
      'grpc.max_send_message_length': options.maxSendMessageBytes ?? 2 * 1024 * 1024 + 512 * 1024,
      // Reconnect soon after a member comes back (a watch resumes as soon as it can).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc-node.flow_control_window': options.flowControlWindowBytes ?? FLOW_CONTROL_WINDOW_BYTES,
    };
    this.endpoints = options.endpoints.map((url) => new Endpoint(url, credentials, channelOptions));
  }

  /** The endpoint calls go to now (for tools that report which member answered). */
  get active(): Endpoint { return this.endpoints[this.current]!; }

  /** A connected endpoint, trying each in turn from the one in use; authenticated if configured. */
  async ready(deadline: number | undefined, signal?: AbortSignal): Promise<Endpoint> {
    const ep = await this.connected(deadline, signal);
    if (this.options.auth && !ep.loggedIn) await this.authenticate(ep, deadline, signal);
    return ep;
  }

  private async connected(deadline: number | undefined, signal?: AbortSignal): Promise<Endpoint> {
    if (this.closed) throw new Error('client is closed');
    const first = this.endpoints[this.current]!;
    if (first.isReady()) return first;
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      signal?.throwIfAborted();
      const idx = (this.current + i) % n;
      const ep = this.endpoints[idx]!;
      const now = Date.now();
      if (deadline !== undefined && now >= deadline) throw new DeadlineExceededError();
      const until = Math.min(deadline ?? Infinity, now + this.dialTimeoutMs);
      if (await raceAbort(ep.waitReady(until), signal)) {
        this.current = idx;
        return ep;
      }
    }
    signal?.throwIfAborted();
    throw new NoAvailableEndpointError(this.endpoints.map((e) => e.url));
  }

  /** Moves off an endpoint whose connection failed, so the next call starts at another. */
  markFailed(ep: Endpoint): void {
    if (this.endpoints[this.current] === ep) this.current = (this.current + 1) % this.endpoints.length;
  }

  /** A given endpoint, connected and authenticated (per-member calls: status, defragment, ...). */
  async readyAt(ep: Endpoint, deadline: number | undefined, signal?: AbortSignal): Promise<Endpoint> {
    if (this.closed) throw new Error('client is closed');
    if (!ep.isReady()) {
      const until = Math.min(deadline ?? Infinity, Date.now() + this.dialTimeoutMs);
      if (!(await raceAbort(ep.waitReady(until), signal))) {
        signal?.throwIfAborted();
        throw deadline !== undefined && Date.now() >= deadline ? new DeadlineExceededError() : new NoAvailableEndpointError([ep.url]);
      }
    }
    if (this.options.auth && !ep.loggedIn) await this.authenticate(ep, deadline, signal);
    return ep;
  }

  private async authenticate(ep: Endpoint, deadline: number | undefined, signal?: AbortSignal): Promise<void> {
    const { username, password } = this.options.auth!;
    this.password ??= typeof password === 'string' ? Promise.resolve(password) : password();
    const secret = await raceAbort(this.password, signal);
    ep.setToken(undefined);
    if (secret === '') { ep.setToken(undefined, true); return; }
    try {
      const res = await this.unaryOn(ep, Auth.authenticate, { name: username, password: secret }, deadline, signal);
      ep.setToken(res.token);
    } catch (e) {
      if (!(e instanceof EtcdErrors.AuthNotEnabled)) throw e;
      this.options.onIgnoredError?.(e);
      ep.setToken(undefined, true);
    }
  }

  /** One unary call with failover, token refresh and the call's deadline and signal. */
  async unary<Req, Res>(rpc: Rpc<Req, Res>, req: Req, opts?: CallOptions): Promise<Res> {
    const deadline = deadlineOf(opts, this.options.defaultCallTimeoutMs);
    const signal = opts?.signal;
    let reauthenticated = false;
    for (let attempt = 0; ; attempt++) {
      const ep = await this.ready(deadline, signal);
      try {
        return await this.unaryOn(ep, rpc, req, deadline, signal);
      } catch (e) {
        if (e instanceof EtcdErrors.InvalidAuthToken && this.options.auth && !reauthenticated) {
          reauthenticated = true; // the token expired or its member restarted: ask for a new one once
          ep.setToken(undefined);
          continue;
        }
        if (isTransportFailure(e) && rpc.retriable && attempt < 2 * this.endpoints.length) {
          this.markFailed(ep);
          continue;
        }
        throw e;
      }
    }
  }

  /** One unary call on a given endpoint, no retry. */
  unaryOn<Req, Res>(ep: Endpoint, rpc: Rpc<Req, Res>, req: Req, deadline: number | undefined, signal?: AbortSignal): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (signal?.aborted) { reject(signal.reason); return; }
      const onAbort = () => call.cancel();
      const call = ep.client.makeUnaryRequest(rpc.path, rpc.serialize, rpc.deserialize, req, ep.metadata,
        deadline === undefined ? {} : { deadline }, (err, res) => {
          signal?.removeEventListener('abort', onAbort);
          if (signal?.aborted) reject(signal.reason);
          else if (err) reject(errorFromStatus(err.code, err.details));
          else resolve(res!);
        });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A bidirectional stream on a connected endpoint (the caller handles reconnects). */
  async bidi<Req, Res>(rpc: Rpc<Req, Res>, opts?: CallOptions & { requireLeader?: boolean }): Promise<{ ep: Endpoint; call: grpc.ClientDuplexStream<Req, Res> }> {
    const deadline = deadlineOf(opts, undefined);
    const ep = await this.ready(deadline, opts?.signal);
    let metadata = ep.metadata;
    if (opts?.requireLeader) {
      // etcd's WithRequireLeader: the server ends the stream when its member loses the leader.
      metadata = metadata.clone();
      metadata.set('hasleader', 'true');
    }
    const call = ep.client.makeBidiStreamRequest(rpc.path, rpc.serialize, rpc.deserialize, metadata,
      deadline === undefined ? {} : { deadline });
    return { ep, call };
  }

  /** A server stream on a connected endpoint. */
  async serverStream<Req, Res>(rpc: Rpc<Req, Res>, req: Req, opts?: CallOptions): Promise<{ ep: Endpoint; call: grpc.ClientReadableStream<Res> }> {
    const deadline = deadlineOf(opts, undefined);
    const ep = await this.ready(deadline, opts?.signal);
    const call = ep.client.makeServerStreamRequest(rpc.path, rpc.serialize, rpc.deserialize, req, ep.metadata,
      deadline === undefined ? {} : { deadline });
    return { ep, call };
  }

  close(): void {
    this.closed = true;
    for (const ep of this.endpoints) ep.client.close();
  }
}

/** The promise, or signal.reason as soon as the signal aborts. */
function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); });
  });
}

/** The Error a failed stream reports, mapped as a unary call's would be. */
export function streamError(err: grpc.ServiceError): Error {
  return errorFromStatus(err.code, err.details);
}
