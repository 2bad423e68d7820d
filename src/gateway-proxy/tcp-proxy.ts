/**
 * etcd 3.4's L4 gateway (proxy/tcpproxy/userspace.go): every accepted TCP connection is
 * joined byte for byte to a connection to one endpoint, picked round-robin among the active
 * ones. An endpoint that refuses a dial is marked inactive (the connection tries the next);
 * every `retryDelayMs` each inactive endpoint is dialled once and becomes active again when
 * the dial succeeds. It knows nothing of HTTP/2 or gRPC: TLS and keepalives pass through.
 */
import net from 'node:net';
import { durationSeconds, type Logger } from '../log/index.js';

export interface ProxyEndpoint {
  /** Host name or IP literal, without brackets. */
  readonly host: string;
  readonly port: number;
}

export interface TcpProxyOptions {
  endpoints: readonly ProxyEndpoint[];
  /** --retry-delay: how long an endpoint that failed a dial stays out of the rotation. */
  retryDelayMs: number;
  log: Logger;
  /**
   * A dial that neither connects nor fails by then counts as failed. etcd has none (a TODO in
   * userspace.go: the OS connect timeout, minutes); a blackholed member should not hold a
   * client that long when another member answers.
   */
  dialTimeoutMs?: number;
}

/** One endpoint and whether it is in the rotation. */
class Remote {
  active = true;
  readonly addr: string;
  constructor(readonly endpoint: ProxyEndpoint) {
    this.addr = `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
  }
}

export class TcpProxy {
  private readonly remotes: Remote[];
  private pickCount = 0;
  private readonly server: net.Server;
  private readonly connections = new Set<net.Socket>();
  private monitor: ReturnType<typeof setInterval> | undefined;
  private readonly log: Logger;
  /** --retry-delay as the log's "interval": seconds, as zap.NewProduction encodes a zap.Duration. */
  private readonly interval: number;
  private readonly dialTimeoutMs: number;

  constructor(private readonly opts: TcpProxyOptions) {
    this.remotes = opts.endpoints.map((e) => new Remote(e));
    this.log = opts.log;
    this.interval = durationSeconds(opts.retryDelayMs);
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 5000;
    this.server = net.createServer({ noDelay: true }, (socket) => { void this.serve(socket); });
  }

  /** Listens on host:port; resolves to the port bound. */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => { this.server.off('error', reject); resolve(); });
    });
    this.log.info('ready to proxy client requests', { endpoints: this.remotes.map((r) => r.addr) });
    this.monitor = setInterval(() => this.reactivate(), this.opts.retryDelayMs);
    this.monitor.unref();
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stops accepting and drops every proxied connection. */
  async close(): Promise<void> {
    clearInterval(this.monitor);
    for (const s of this.connections) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Round-robin over all endpoints, skipping inactive ones (userspace.go's pick for weightless SRVs). */
  private pick(): Remote | undefined {
    for (let i = 0; i < this.remotes.length; i++) {
      const r = this.remotes[this.pickCount % this.remotes.length]!;
      this.pickCount++;
      if (r.active) return r;
    }
    return undefined;
  }

  private async serve(client: net.Socket): Promise<void> {
    // Nothing is read from the client until its upstream is chosen; what it sends waits in
    // the socket's buffer (bounded by its highWaterMark, then TCP flow control).
    client.pause();
    this.connections.add(client);
    client.on('error', () => { /* the client went away; 'close' follows */ });
    client.once('close', () => this.connections.delete(client));
    for (let remote = this.pick(); remote !== undefined; remote = this.pick()) {
      const upstream = await this.dial(remote);
      if (client.destroyed) { upstream?.destroy(); return; }
      if (upstream !== undefined) { this.join(client, upstream); return; }
    }
    client.destroy();
  }

  /** A connected socket to `remote`, or undefined after marking it inactive. */
  private async dial(remote: Remote): Promise<net.Socket | undefined> {
    const s = await this.connect(remote);
    if (!(s instanceof Error)) return s;
    remote.active = false;
    this.log.warn('deactivated endpoint', { address: remote.addr, interval: this.interval, error: dialError(remote.addr, s) });
    return undefined;
  }

  /** One TCP dial, bounded by dialTimeoutMs: the socket, or why it failed. */
  private connect(remote: Remote): Promise<net.Socket | Error> {
    return new Promise((resolve) => {
      const s = net.connect({ host: remote.endpoint.host, port: remote.endpoint.port, noDelay: true });
      const timer = setTimeout(() => s.destroy(new Error(`dial tcp ${remote.addr}: i/o timeout`)), this.dialTimeoutMs);
      s.once('connect', () => { clearTimeout(timer); s.removeAllListeners('error'); resolve(s); });
      s.once('error', (e) => { clearTimeout(timer); s.destroy(); resolve(e); });
    });
  }

  /** Bytes both ways until either side closes, then both are closed (io.Copy, then Close on both). */
  private join(client: net.Socket, upstream: net.Socket): void {
    this.connections.add(upstream);
    const closeBoth = (): void => { client.destroy(); upstream.destroy(); };
    upstream.on('error', closeBoth);
    client.on('error', closeBoth);
    upstream.once('close', () => { this.connections.delete(upstream); closeBoth(); });
    client.once('close', closeBoth);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  /** runMonitor's round: each inactive endpoint is dialled once. */
  private reactivate(): void {
    for (const remote of this.remotes) {
      if (remote.active) continue;
      void this.connect(remote).then((s) => {
        if (s instanceof Error) {
          this.log.warn('failed to activate endpoint (stay inactive for another interval)', {
            address: remote.addr, interval: this.interval, error: dialError(remote.addr, s),
          });
          return;
        }
        s.destroy();
        remote.active = true;
        this.log.info('activated', { address: remote.addr });
      });
    }
  }
}

/** Go's net.OpError text for a failed dial ("dial tcp 127.0.0.1:1: connect: connection refused"). */
function dialError(addr: string, e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return `dial tcp ${addr}: connect: connection refused`;
  if (code === 'ENOTFOUND') return `dial tcp: lookup ${addr.replace(/:\d+$/, '')}: no such host`;
  return e.message;
}
