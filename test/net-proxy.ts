// A loopback TCP proxy for peer traffic, controllable per directed link: cut (drop or refuse),
// delay, heal. The cluster harness (test/cluster-harness.ts, `proxy: true`) advertises every
// member's peer URL as a proxy port; the proxy forwards to the member's real listen-peer-url.
//
// Directed links. All members must agree on each member's peer URL (the member and cluster ids
// are hashed from them), so there is one listening proxy per destination member, not per pair.
// The dialer of a connection is read from etcd's X-Server-From header (its member id in hex) in
// the first request; the ids are computed from the advertised URLs exactly as etcd does. Every
// connection carries bytes both ways: bytes the dialer sends travel link dialer→dest, the
// replies travel dest→dialer (rafthttp's streams are GETs whose *responses* carry the messages).
// So link a→b means "bytes from a to b on any connection between them".
//
// Modes of a link a→b:
//   open     bytes flow (after `delayMs`, order kept);
//   drop     bytes from a to b stop: they are held, as TCP would keep retransmitting, and flow
//            on heal. The proxy stops reading the sender once maxQueuedBytes are held, so the
//            sender's socket fills up, as over a dead network;
//   refuse   every connection carrying a→b bytes is reset, and new ones as soon as they do
//            (a dial from a to b is reset at once), as a host that answers RST.
// Connections without X-Server-From (etcd's /raft/probing, /version, /leases forwarding) have
// an unknown dialer: they are treated as cut whenever any link into or out of their
// destination is cut, so a partition never leaks through them (they may be blocked more than
// needed, never less).

import * as net from 'node:net';
import { createHash } from 'node:crypto';

export type LinkMode = 'open' | 'drop' | 'refuse';

interface LinkState { mode: LinkMode; delayMs: number }

export interface ProxiedMember {
  name: string;
  /** The advertised peer port: the proxy listens here. */
  listenPort: number;
  /** The member's real listen-peer-url port. */
  targetPort: number;
  /** The member's id (etcdMemberId of its advertised peer URLs). */
  id: bigint;
}

/** etcd 3.4's member id for a member of the initial cluster (membership.NewMember, no time). */
export function etcdMemberId(peerUrls: string[], clusterToken: string): bigint {
  const h = createHash('sha1').update([...peerUrls].sort().join('') + clusterToken).digest();
  return h.readBigUInt64BE(0);
}

/** Bytes held per direction of a connection before the proxy stops reading its sender. */
const maxQueuedBytes = 1 << 20;
/** Bytes of the first request read to find X-Server-From before the dialer counts as unknown. */
const maxSniffBytes = 64 * 1024;
/** How long to wait for the first request's headers before the dialer counts as unknown. */
const sniffTimeoutMs = 5_000;
const UNKNOWN = -1;

/** One direction of one proxied connection: a queue that honours its link's mode and delay. */
class Pipe {
  private queue: { chunk: Buffer; dueAt: number }[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private waitingDrain = false;
  private pausedByUs = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly link: () => LinkState,
    private readonly onRefuse: () => void,
    private readonly onDelivered: (n: number) => void,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push({ chunk, dueAt: Date.now() + this.link().delayMs });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > maxQueuedBytes && !this.pausedByUs) { this.pausedByUs = true; this.src.pause(); }
    this.pump();
  }

  /** Move what its link allows now; re-armed by a timer (delay), 'drain', or a link change. */
  pump(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const state = this.link();
    if (state.mode === 'refuse' && this.queue.length > 0) { this.onRefuse(); return; }
    if (state.mode !== 'open' || this.waitingDrain || this.dst.destroyed) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const wait = head.dueAt - Date.now();
      if (wait > 0) { this.timer = setTimeout(() => this.pump(), wait); break; }
      this.queue.shift();
      this.queuedBytes -= head.chunk.length;
      this.onDelivered(head.chunk.length);
      if (!this.dst.write(head.chunk)) {
        this.waitingDrain = true;
        this.dst.once('drain', () => { this.waitingDrain = false; this.pump(); });
        break;
      }
    }
    if (this.pausedByUs && this.queuedBytes <= maxQueuedBytes / 2) { this.pausedByUs = false; this.src.resume(); }
  }

  stop(): void { if (this.timer) clearTimeout(this.timer); this.timer = null; this.queue = []; this.queuedBytes = 0; }
}

/** One accepted connection and its upstream, once its dialer is known. */
class ProxiedConnection {
  fwd: Pipe | null = null;
  back: Pipe | null = null;
  constructor(readonly dialer: number, readonly dest: number, readonly client: net.Socket, readonly upstream: net.Socket) {}
  destroy(): void {
    this.fwd?.stop();
    this.back?.stop();
    this.client.destroy();
    this.upstream.destroy();
  }
}

/** Proxies in front of every member's peer port, and the state of every directed link. */
export class PeerProxies {
  private readonly links: LinkState[][];
  private readonly conns = new Set<ProxiedConnection>();
  private readonly pending = new Set<net.Socket>();
  private readonly servers: net.Server[] = [];
  /** Bytes delivered per directed link [from][to] (from = -1 row not kept). */
  readonly delivered: number[][];

  private constructor(readonly members: ProxiedMember[]) {
    const n = members.length;
    this.links = Array.from({ length: n }, () => Array.from({ length: n }, () => ({ mode: 'open' as LinkMode, delayMs: 0 })));
    this.delivered = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  }

  /** Listen on every member's advertised peer port (127.0.0.1). */
  static async start(members: ProxiedMember[]): Promise<PeerProxies> {
    const pn = new PeerProxies(members);
    try {
      for (let i = 0; i < members.length; i++) await pn.listen(i);
    } catch (e) {
      await pn.close();
      throw e;
    }
    return pn;
  }

  private listen(dest: number): Promise<void> {
    const srv = net.createServer((sock) => this.accept(dest, sock));
    this.servers.push(srv);
    return new Promise((res, rej) => {
      srv.once('error', rej);
      srv.listen(this.members[dest]!.listenPort, '127.0.0.1', () => { srv.off('error', rej); res(); });
    });
  }

  // ---- control ----

  /** Cut link from→to: 'drop' holds its bytes until heal, 'refuse' resets its connections. */
  cut(from: number, to: number, how: 'drop' | 'refuse' = 'drop'): void {
    this.setLink(from, to, { mode: how });
  }

  /** Delay bytes on link from→to by ms (0 = none); bytes already queued keep their time. */
  delay(from: number, to: number, ms: number): void {
    this.setLink(from, to, { delayMs: ms });
  }

  /** Cut both directions between every member of `a` and every member of `b`. */
  partition(a: number[], b: number[], how: 'drop' | 'refuse' = 'drop'): void {
    for (const x of a) for (const y of b) { this.cut(x, y, how); this.cut(y, x, how); }
  }

  /** Cut member i off from all others, both directions. */
  isolate(i: number, how: 'drop' | 'refuse' = 'drop'): void {
    this.partition([i], this.members.map((_, j) => j).filter((j) => j !== i), how);
  }

  /** Open every link (or only from→to) and remove delays; held bytes flow. */
  heal(from?: number, to?: number): void {
    for (let f = 0; f < this.members.length; f++) for (let t = 0; t < this.members.length; t++) {
      if ((from === undefined || f === from) && (to === undefined || t === to)) this.setLink(f, t, { mode: 'open', delayMs: 0 });
    }
  }

  link(from: number, to: number): LinkState { return { ...this.linkState(from, to) }; }

  /** Connections currently proxied (for tests). */
  connectionCount(): number { return this.conns.size; }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    for (const s of this.pending) s.destroy();
    this.conns.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  // ---- internals ----

  private setLink(from: number, to: number, change: Partial<LinkState>): void {
    if (from === to) return;
    const l = this.linkState(from, to);
    Object.assign(l, change);
    for (const c of [...this.conns]) {
      if (this.effective(c.dialer, c.dest).mode === 'refuse' || this.effective(c.dest, c.dialer).mode === 'refuse') {
        this.drop(c);
        continue;
      }
      c.fwd?.pump();
      c.back?.pump();
    }
  }

  private linkState(from: number, to: number): LinkState {
    const l = this.links[from]?.[to];
    if (!l) throw new Error(`no link ${from}->${to} (${this.members.length} members)`);
    return l;
  }

  /** The state for a pair, where one side may be the unknown dialer (see the header). */
  private effective(from: number, to: number): LinkState {
    if (from !== UNKNOWN && to !== UNKNOWN) return this.links[from]![to]!;
    const known = from === UNKNOWN ? to : from;
    let worst: LinkState = { mode: 'open', delayMs: 0 };
    for (let j = 0; j < this.members.length; j++) {
      if (j === known) continue;
      for (const l of [this.links[j]![known]!, this.links[known]![j]!]) {
        if (l.mode === 'refuse' || (l.mode === 'drop' && worst.mode === 'open')) worst = { mode: l.mode, delayMs: 0 };
      }
    }
    return worst;
  }

  private accept(dest: number, client: net.Socket): void {
    this.pending.add(client);
    let sniffed = Buffer.alloc(0);
    let conn: ProxiedConnection | null = null;
    const upstream = net.connect(this.members[dest]!.targetPort, '127.0.0.1');
    upstream.pause();
    const end = () => {
      clearTimeout(timer);
      this.pending.delete(client);
      if (conn) this.drop(conn);
      else { client.destroy(); upstream.destroy(); }
    };
    for (const s of [client, upstream]) { s.on('error', end); s.on('close', end); }
    const timer = setTimeout(() => decide(UNKNOWN), sniffTimeoutMs);
    const onData = (d: Buffer) => {
      sniffed = Buffer.concat([sniffed, d]);
      const headEnd = sniffed.indexOf('\r\n\r\n');
      if (headEnd >= 0) decide(this.dialerOf(sniffed.subarray(0, headEnd).toString('latin1')));
      else if (sniffed.length > maxSniffBytes) decide(UNKNOWN);
    };
    const decide = (dialer: number) => {
      clearTimeout(timer);
      client.off('data', onData);
      client.pause();
      this.pending.delete(client);
      if (client.destroyed || upstream.destroyed) return end();
      conn = new ProxiedConnection(dialer, dest, client, upstream);
      this.connect(conn, sniffed);
    };
    client.on('data', onData);
  }

  /** The member index named by the request's X-Server-From header, or UNKNOWN. */
  private dialerOf(headers: string): number {
    const m = /\r\nX-Server-From:[ \t]*([0-9a-fA-F]{1,16})[ \t]*(\r|$)/i.exec(headers);
    if (!m) return UNKNOWN;
    const id = BigInt(`0x${m[1]}`);
    return this.members.findIndex((x) => x.id === id);
  }

  private connect(c: ProxiedConnection, firstBytes: Buffer): void {
    this.conns.add(c);
    const { dialer, dest } = c;
    const count = (from: number, to: number) => (n: number) => {
      if (from !== UNKNOWN && to !== UNKNOWN) this.delivered[from]![to]! += n;
    };
    c.fwd = new Pipe(c.client, c.upstream, () => this.effective(dialer, dest), () => this.drop(c), count(dialer, dest));
    c.back = new Pipe(c.upstream, c.client, () => this.effective(dest, dialer), () => this.drop(c), count(dest, dialer));
    c.client.on('data', (d: Buffer) => c.fwd!.push(d));
    c.upstream.on('data', (d: Buffer) => c.back!.push(d));
    if (this.effective(dialer, dest).mode === 'refuse') return this.drop(c);
    if (firstBytes.length > 0) c.fwd.push(firstBytes);
    c.client.resume();
    c.upstream.resume();
  }

  private drop(c: ProxiedConnection): void {
    if (!this.conns.delete(c)) return;
    c.destroy();
  }
}
