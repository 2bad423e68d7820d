// Multi-process test harness: starts real etcd and Concord as child processes, runs real
// etcdctl against them, and talks gRPC to them through @grpc/grpc-js with the generated codecs.
//
// How to run (after `npx tsc -p .`):
//   node --test dist/test/differential.test.js           # both targets (the default)
//   CONCORD_TESTS_ETCD_ONLY=1 node --test dist/test/...   # only real etcd (Concord skipped)
//   CONCORD_TESTS_CONCORD_ONLY=1 node --test dist/test/...# only Concord (oracle comparisons skipped)
//   CONCORD_TESTS_TARGETS=etcd,etcd node --test ...      # explicit list; etcd,etcd checks that a
//                                                         # differential test is deterministic on the oracle
//   CONCORD_TESTS_KEEP=1 ...                              # keep temp data dirs (their paths are printed)
//   CONCORD_TESTS_VERBOSE=1 ...                           # echo server logs to stderr
// Per-test knobs (see each file's header):
//   differential.test: CONCORD_DIFF_SEED, CONCORD_DIFF_RANDOM_OPS (default 300)
//   crash.test:        CONCORD_CRASH_ROUNDS (default 5), CONCORD_CRASH_SEED, CONCORD_CRASH_WRITERS;
//                      targets Concord only (dry-runs against etcd with CONCORD_TESTS_ETCD_ONLY=1)
//   The whole set:     npm test (builds, then scripts/run-tests.js), or
//                      node --test --test-concurrency=2 dist/test/*.test.js
// The files: differential.test (gRPC responses field by field), etcdctl.test (real etcdctl
// output), quota.test (NOSPACE alarm), crash.test (kill -9 and SIGTERM). Benchmarks are not
// tests: `npm run bench` (bench/main.ts, which reuses this harness to start the servers).
//
// Every server listens on 127.0.0.1 on ports found free by binding port 0, keeps its data in a
// fresh temp dir, and is killed by pid (never by name): on stop(), in the test files' after()
// hooks, and on process exit as a last resort.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as net from 'node:net';
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import {
  RangeRequest, RangeResponse, PutRequest, PutResponse, DeleteRangeRequest, DeleteRangeResponse,
  TxnRequest, TxnResponse, CompactionRequest, CompactionResponse, StatusRequest, StatusResponse,
  AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, MemberListRequest,
  MemberListResponse, HashKVRequest, HashKVResponse, Compare, RequestOp,
  LeaseGrantRequest, LeaseGrantResponse, type MessageFns,
} from '../src/proto/gen/etcdserverpb/rpc.js';

/** Repository root (dist/test/harness.js -> ../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type TargetName = 'etcd' | 'concord';

/** Targets selected by the environment: both by default. */
export function selectedTargets(): TargetName[] {
  const list = process.env.CONCORD_TESTS_TARGETS;
  if (list) return list.split(',').map((t) => t.trim()).filter((t): t is TargetName => t === 'etcd' || t === 'concord');
  if (process.env.CONCORD_TESTS_ETCD_ONLY === '1') return ['etcd'];
  if (process.env.CONCORD_TESTS_CONCORD_ONLY === '1') return ['concord'];
  return ['etcd', 'concord'];
}
/** A server to run a test against: a target, and the environment it runs with. */
export interface TargetVariant { target: TargetName; label: string; env?: Record<string, string> }

/**
 * The selected targets, Concord twice: its client API in the main thread ('concord') and on
 * its worker thread ('concord (worker-thread API)', CONCORD_API_THREAD=1).
 */
export function targetsWithWorkerThreadApi(): TargetVariant[] {
  return selectedTargets().flatMap((target): TargetVariant[] => (target === 'concord'
    ? [{ target, label: 'concord' }, { target, label: 'concord (worker-thread API)', env: { CONCORD_API_THREAD: '1' } }]
    : [{ target, label: target }]));
}
/**
 * Concord on its own HTTP/2 server (api/h2/, the default) and on node:http2 (CONCORD_H2=node,
 * the fallback), and etcd: for the front-end suites.
 */
export function targetsWithBothH2(): TargetVariant[] {
  return selectedTargets().flatMap((target): TargetVariant[] => (target === 'concord'
    ? [{ target, label: 'concord' }, { target, label: 'concord (node:http2)', env: { CONCORD_H2: 'node' } }]
    : [{ target, label: target }]));
}
export const runEtcd = (): boolean => selectedTargets().includes('etcd');
export const runConcord = (): boolean => selectedTargets().includes('concord');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export { sleep };

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

// ---- process registry: every child we spawn is killed on exit, by pid ----
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
export function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => { process.exit(130); });
    }
  }
}

export interface ServerOptions {
  target: TargetName;
  /** Member name (default "t0"). */
  name?: string;
  /** Extra flags, e.g. ['--quota-backend-bytes', '4194304']. */
  extraArgs?: string[];
  /** Node's own flags for a Concord process (e.g. ['--max-semi-space-size=4']); etcd ignores them. */
  nodeArgs?: string[];
  /** How long to wait for readiness (default 30 s). */
  readyTimeoutMs?: number;
  /** Client URL scheme (default http; https needs the TLS flags in extraArgs). */
  scheme?: 'http' | 'https';
  /** Environment added to the server's (e.g. CONCORD_API_THREAD=1 for Concord's worker-thread API). */
  env?: Record<string, string>;
  /**
   * Run the server in a session of its own (setsid), as a service manager starts a daemon.
   * With the kernel's sched_autogroup, each session shares the CPU as one group: a server in
   * its load generator's session competes with the generator thread by thread, and its main
   * thread waits for a core far more often than a deployed server's would (the benches set
   * this; bench/loop-stalls.ts measured it). Default false: tests keep servers in their session.
   */
  ownSession?: boolean;
}

/**
 * What etcd (and Concord) log once the member's attributes applied and the client port serves:
 * capnslog's "ready to serve client requests", zap's "serving client traffic (in)securely".
 */
const READY_LINE = /ready to serve client requests|serving client traffic (in)?securely/;

/** One server process (etcd or Concord) with its own data dir and ports, restartable. */
export class Server {
  readonly target: TargetName;
  readonly name: string;
  readonly dataDir: string;
  readonly extraArgs: string[];
  readonly nodeArgs: string[];
  readonly scheme: 'http' | 'https';
  readonly env: Record<string, string>;
  readonly ownSession: boolean;
  clientPort = 0;
  peerPort = 0;
  child: ChildProcess | null = null;
  /** Last ~256 KiB of the current process's stdout+stderr. */
  log = '';
  private readyTimeoutMs: number;
  private baseDir: string;

  constructor(opts: ServerOptions) {
    this.target = opts.target;
    this.name = opts.name ?? 't0';
    this.extraArgs = opts.extraArgs ?? [];
    this.nodeArgs = opts.nodeArgs ?? [];
    this.scheme = opts.scheme ?? 'http';
    this.env = opts.env ?? {};
    this.ownSession = opts.ownSession ?? false;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
    this.baseDir = mkdtempSync(join(tmpdir(), `concord-test-${opts.target}-`));
    this.dataDir = join(this.baseDir, 'data');
    if (process.env.CONCORD_TESTS_KEEP === '1') process.stderr.write(`[harness] ${this.target} data dir ${this.dataDir}\n`);
  }

  get endpoint(): string { return `${this.scheme}://127.0.0.1:${this.clientPort}`; }
  get peerUrl(): string { return `http://127.0.0.1:${this.peerPort}`; }
  get pid(): number | undefined { return this.child?.pid; }
  get running(): boolean { return !!this.child && this.child.exitCode === null && this.child.signalCode === null; }

  args(): string[] {
    return [
      '--name', this.name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', `${this.name}=${this.peerUrl}`,
      ...this.extraArgs,
    ];
  }

  /** Start (first time: on fresh free ports, retried if a port was taken meanwhile). */
  async start(): Promise<void> {
    const fresh = this.clientPort === 0;
    for (let attempt = 0; ; attempt++) {
      if (fresh) {
        this.clientPort = await freePort();
        this.peerPort = await freePort();
        if (this.peerPort === this.clientPort) continue;
      }
      try {
        await this.spawnAndWait();
        return;
      } catch (e) {
        const inUse = /address already in use|EADDRINUSE/i.test(this.log);
        if (this.running) await this.kill();
        if (attempt < 4 && inUse) { await sleep(200); if (!fresh) await sleep(500); continue; }
        throw e;
      }
    }
  }

  /** Start again on the same data dir and ports (after stop() or kill()). */
  async restart(): Promise<void> {
    if (this.running) throw new Error('restart() while running');
    await this.start();
  }

  /**
   * Spawn the process on the current ports and data dir without waiting for readiness
   * (for killing it mid-start-up). start()/restart() call this and then wait.
   */
  launch(): void {
    if (this.running) throw new Error('launch() while running');
    if (this.clientPort === 0) throw new Error('launch() before the first start()');
    this.spawnChild();
  }

  /** Whether the log has said the member serves clients (READY_LINE). */
  private sawReadyLine = false;

  private spawnChild(): ChildProcess {
    this.log = '';
    this.sawReadyLine = false;
    const [cmd, argv] = this.target === 'etcd'
      ? ['etcd', this.args()]
      // Run as a program, as `concord` is: its launcher line sets V8's worker pool (bin/concord.js).
      : [join(REPO_ROOT, 'bin', 'concord.js'), this.args()];
    const nodeArgs = this.target === 'concord' && this.nodeArgs.length > 0 ? { CONCORD_NODE_ARGS: this.nodeArgs.join(' ') } : {};
    const child = spawn(cmd, argv, { detached: this.ownSession, stdio: ['ignore', 'pipe', 'pipe'], cwd: this.baseDir, env: { ...process.env, ...this.env, ...nodeArgs } });
    track(child);
    this.child = child;
    const onData = (d: Buffer) => {
      const s = d.toString();
      if (process.env.CONCORD_TESTS_VERBOSE === '1') process.stderr.write(`[${this.target}] ${s}`);
      this.log += s;
      if (this.log.length > 262_144) this.log = this.log.slice(-131_072);
      // The line may arrive split across two chunks: look at the log's tail, not the chunk alone.
      if (!this.sawReadyLine && READY_LINE.test(this.log.slice(-(s.length + 64)))) this.sawReadyLine = true;
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    return child;
  }

  private async spawnAndWait(): Promise<void> {
    const child = this.spawnChild();
    const deadline = Date.now() + this.readyTimeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.target} exited (${child.exitCode ?? child.signalCode}) before ready:\n${this.log.slice(-4000)}`);
      }
      // Ready: READY_LINE in the log (once the member's attributes applied), then any answer
      // on /version. Never /health: etcd 3.4's is a QGET through raft, one log entry per
      // probe, and a probe that timed out under load and was retried left a different raft
      // index on each run (CI: endpoint status said 20 where its twin said 19). Over https
      // the probe would need the test's certificates: the line alone says it.
      if (this.sawReadyLine) {
        if (this.scheme === 'https') return;
        if (await httpGet(`${this.endpoint}/version`, 1000).catch(() => null)) return;
      }
      await sleep(50);
    }
    throw new Error(`${this.target} not ready after ${this.readyTimeoutMs} ms:\n${this.log.slice(-4000)}`);
  }

  /** SIGTERM, then SIGKILL after boundMs. Resolves with how the process ended. */
  async stop(boundMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
    const child = this.child;
    if (!child || !this.running) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null, killed: false };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    child.kill('SIGTERM');
    let killed = false;
    const t = setTimeout(() => { if (child.exitCode === null && child.signalCode === null) { killed = true; child.kill('SIGKILL'); } }, boundMs);
    const how = await exited;
    clearTimeout(t);
    return { ...how, killed };
  }

  /** kill -9 by pid; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stop (SIGKILL if needed) and delete the data dir unless CONCORD_TESTS_KEEP=1. */
  async destroy(): Promise<void> {
    try { await this.stop(5000); } catch { /* ignore */ }
    if (process.env.CONCORD_TESTS_KEEP !== '1' && existsSync(this.baseDir)) rmSync(this.baseDir, { recursive: true, force: true });
  }

  /** Run real etcdctl against this server. */
  etcdctl(args: string[], opts: { stdin?: string; timeoutMs?: number; cwd?: string } = {}): Promise<CmdResult> {
    return etcdctl(this.endpoint, args, { cwd: this.baseDir, ...opts });
  }

  /** A scratch path inside this server's temp dir (not the data dir). */
  scratch(name: string): string { return join(this.baseDir, name); }

  /** A gRPC client (grpc-js) to this server. Close it when done. */
  client(): EtcdClient { return new EtcdClient(this.endpoint); }
}

/** Create and start a server; the caller destroys it in after(). */
export async function startServer(opts: ServerOptions): Promise<Server> {
  const s = new Server(opts);
  try {
    await s.start();
  } catch (e) {
    await s.destroy();
    throw e;
  }
  return s;
}

export interface HttpResult { status: number; body: string }
export function httpGet(url: string, timeoutMs = 2000): Promise<HttpResult> {
  return new Promise((res, rej) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => { body += c; });
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
  });
}

// ---- etcdctl ----
export interface CmdResult { code: number | null; stdout: string; stderr: string }

export function etcdctl(endpoint: string, args: string[], opts: { stdin?: string; timeoutMs?: number; cwd?: string } = {}): Promise<CmdResult> {
  return new Promise((res, rej) => {
    const child = spawn('etcdctl', ['--endpoints', endpoint, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      cwd: opts.cwd,
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => { clearTimeout(t); rej(e); });
    child.on('close', (code) => { clearTimeout(t); res({ code, stdout, stderr }); });
    if (child.stdin) {
      child.stdin.on('error', () => { /* etcdctl may exit without reading stdin (EPIPE) */ });
      child.stdin.end(opts.stdin);
    }
  });
}

// ---- gRPC client (grpc-js + generated codecs) ----

/** A gRPC failure as the client sees it. */
export class GrpcError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(`${code} ${details}`);
  }
}

/** Outcome of one call, for field-by-field comparison. */
export type Outcome<T> = { ok: true; res: T } | { ok: false; code: number; message: string };

const ser = <T>(fns: MessageFns<T>) => (m: T) => Buffer.from(fns.encode(m).finish());
const des = <T>(fns: MessageFns<T>) => (b: Buffer) => fns.decode(b);

export class EtcdClient {
  readonly raw: grpc.Client;
  constructor(readonly endpoint: string) {
    const target = endpoint.replace(/^https?:\/\//, '');
    this.raw = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
    });
  }

  /** `token`: sent as the `token` metadata (etcd's auth token). */
  unary<Req, Res>(path: string, reqFns: MessageFns<Req>, resFns: MessageFns<Res>, req: Req, timeoutMs = 15_000, token?: string): Promise<Res> {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('token', token);
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(path, ser(reqFns), des(resFns), req, md,
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          if (err) reject(new GrpcError(err.code ?? 2, err.details ?? err.message));
          else resolve(res as Res);
        });
    });
  }

  /** Like unary, but resolves with an Outcome instead of rejecting on a gRPC status. */
  async outcome<Req, Res>(path: string, reqFns: MessageFns<Req>, resFns: MessageFns<Res>, req: Req, token?: string): Promise<Outcome<Res>> {
    try {
      return { ok: true, res: await this.unary(path, reqFns, resFns, req, 15_000, token) };
    } catch (e) {
      if (e instanceof GrpcError) return { ok: false, code: e.code, message: e.details };
      throw e;
    }
  }

  range(r: Partial<RangeRequest>) { return this.unary('/etcdserverpb.KV/Range', RangeRequest, RangeResponse, mk.range(r)); }
  put(r: Partial<PutRequest>) { return this.unary('/etcdserverpb.KV/Put', PutRequest, PutResponse, mk.put(r)); }
  deleteRange(r: Partial<DeleteRangeRequest>) { return this.unary('/etcdserverpb.KV/DeleteRange', DeleteRangeRequest, DeleteRangeResponse, mk.del(r)); }
  txn(r: Partial<TxnRequest>) { return this.unary('/etcdserverpb.KV/Txn', TxnRequest, TxnResponse, mk.txn(r)); }
  compact(r: Partial<CompactionRequest>) { return this.unary('/etcdserverpb.KV/Compact', CompactionRequest, CompactionResponse, { ...CompactionRequest.fromJSON({}), ...r }); }
  status() { return this.unary('/etcdserverpb.Maintenance/Status', StatusRequest, StatusResponse, {}); }
  alarm(r: Partial<AlarmRequest>) { return this.unary('/etcdserverpb.Maintenance/Alarm', AlarmRequest, AlarmResponse, { ...AlarmRequest.fromJSON({}), ...r }); }
  defragment() { return this.unary('/etcdserverpb.Maintenance/Defragment', DefragmentRequest, DefragmentResponse, {}, 120_000); }
  hashKV(revision = 0) { return this.unary('/etcdserverpb.Maintenance/HashKV', HashKVRequest, HashKVResponse, { revision }); }
  memberList() { return this.unary('/etcdserverpb.Cluster/MemberList', MemberListRequest, MemberListResponse, MemberListRequest.fromJSON({})); }
  leaseGrant(r: Partial<LeaseGrantRequest>) { return this.unary('/etcdserverpb.Lease/LeaseGrant', LeaseGrantRequest, LeaseGrantResponse, { ...LeaseGrantRequest.fromJSON({}), ...r }); }

  /** One KV operation by name, as an Outcome (for differential tests). */
  op(kind: 'range', r: Partial<RangeRequest>): Promise<Outcome<RangeResponse>>;
  op(kind: 'put', r: Partial<PutRequest>): Promise<Outcome<PutResponse>>;
  op(kind: 'delete', r: Partial<DeleteRangeRequest>): Promise<Outcome<DeleteRangeResponse>>;
  op(kind: 'txn', r: Partial<TxnRequest>): Promise<Outcome<TxnResponse>>;
  op(kind: 'compact', r: Partial<CompactionRequest>): Promise<Outcome<CompactionResponse>>;
  op(kind: string, r: any): Promise<Outcome<any>> {
    switch (kind) {
      case 'range': return this.outcome('/etcdserverpb.KV/Range', RangeRequest, RangeResponse, mk.range(r));
      case 'put': return this.outcome('/etcdserverpb.KV/Put', PutRequest, PutResponse, mk.put(r));
      case 'delete': return this.outcome('/etcdserverpb.KV/DeleteRange', DeleteRangeRequest, DeleteRangeResponse, mk.del(r));
      case 'txn': return this.outcome('/etcdserverpb.KV/Txn', TxnRequest, TxnResponse, mk.txn(r));
      case 'compact': return this.outcome('/etcdserverpb.KV/Compact', CompactionRequest, CompactionResponse, { ...CompactionRequest.fromJSON({}), ...r });
      default: throw new Error(`unknown op ${kind}`);
    }
  }

  close(): void { this.raw.close(); }
}

/** Bytes from a string. */
export const b = (s: string): Buffer => Buffer.from(s);

/** Builders that fill in proto defaults, so tests write only the fields they mean. */
export const mk = {
  range: (r: Partial<RangeRequest>): RangeRequest => ({ ...RangeRequest.fromJSON({}), ...r }),
  put: (r: Partial<PutRequest>): PutRequest => ({ ...PutRequest.fromJSON({}), ...r }),
  del: (r: Partial<DeleteRangeRequest>): DeleteRangeRequest => ({ ...DeleteRangeRequest.fromJSON({}), ...r }),
  txn: (r: Partial<TxnRequest>): TxnRequest => ({ compare: [], success: [], failure: [], ...r }),
  cmp: (r: Partial<Compare>): Compare => ({ ...Compare.fromJSON({}), ...r }),
  opRange: (r: Partial<RangeRequest>): RequestOp => ({ requestRange: mk.range(r) }),
  opPut: (r: Partial<PutRequest>): RequestOp => ({ requestPut: mk.put(r) }),
  opDel: (r: Partial<DeleteRangeRequest>): RequestOp => ({ requestDeleteRange: mk.del(r) }),
  opTxn: (r: Partial<TxnRequest>): RequestOp => ({ requestTxn: mk.txn(r) }),
};

/** The key just past every key with this prefix (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer | string): Buffer {
  const p = Buffer.from(prefix);
  for (let i = p.length - 1; i >= 0; i--) {
    if (p[i]! < 0xff) { const e = Buffer.from(p.subarray(0, i + 1)); e[i] = p[i]! + 1; return e; }
  }
  return Buffer.from([0]);
}

/**
 * A plain, comparable view of a decoded response: Buffers become strings (utf8 when printable,
 * else hex), bigints become strings, and the header's cluster_id, member_id and raft_term are
 * dropped (they differ between servers by design). Revision stays.
 */
export function normalize(v: unknown, key = ''): unknown {
  if (v === undefined || v === null) return v;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const buf = Buffer.from(v);
    const s = buf.toString('utf8');
    return /^[\x20-\x7e]*$/.test(s) ? s : `hex:${buf.toString('hex')}`;
  }
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map((x) => normalize(x));
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (key === 'header' && (k === 'clusterId' || k === 'memberId' || k === 'raftTerm')) continue;
      out[k] = normalize(x, k);
    }
    return out;
  }
  return v;
}
