/**
 * etcd 3.4's corruption checks (etcdserver/corrupt.go), over its peer route GET /members/hashkv:
 * - the route itself, answering HashByRev as JSON, so etcd members can ask Concord and back;
 * - --experimental-initial-corrupt-check: a restarting member compares its HashKV with every
 *   peer's at its own revision before it runs raft, and refuses to start on a mismatch;
 * - --experimental-corrupt-check-time: the leader compares periodically and, on a mismatch,
 *   raises the CORRUPT alarm (member id 0: which member is wrong is not known) through raft,
 *   after which every member refuses writes (the applier's CORRUPT rule).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EtcdError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { formatDuration } from '../log/index.js';
import type { HashKVResult } from '../mvcc/index.js';
import { AlarmRequest, AlarmRequest_AlarmAction as AlarmAction, AlarmType } from '../proto/index.js';
import { readPeerBody, peerHttpError, type PeerClientTls } from '../transport/index.js';
import { idToHex } from './membership.js';
import { peerCall } from './peer-call.js';

export const peerHashKVPath = '/members/hashkv';
/** A HashKV request is `{"revision":N}`; anything longer is not one. */
const maxHashKVRequestBytes = 4096;
/** A HashKV answer is a few numbers. */
const maxHashKVResponseBytes = 64 * 1024;

/** mvcc's own wording (the HTTP route answers with mvcc's error, not etcdserver's). */
const mvccCompacted = 'mvcc: required revision has been compacted';
const mvccFutureRev = 'mvcc: required revision is a future revision';

/** What a peer answered: etcd's HashKVResponse as its JSON carries it (header has the revision only). */
export interface PeerHashKV { revision: number; hash: number; compactRevision: number }

/** etcd's hashKVHandler: GET with a JSON HashKVRequest body, a JSON HashKVResponse back. */
export async function serveHashKV(req: IncomingMessage, res: ServerResponse, o: { hashKV: (rev: number) => Promise<HashKVResult>; clusterId: bigint; log: Logger }): Promise<void> {
  if (req.method !== 'GET') {
    res.setHeader('Allow', 'GET');
    peerHttpError(res, 405, 'Method Not Allowed');
    return;
  }
  const body = await readPeerBody(req, maxHashKVRequestBytes);
  if (typeof body === 'string') {
    peerHttpError(res, 400, 'error reading body');
    return;
  }
  const revision = parseHashKVRequest(Buffer.from(body).toString('utf8'));
  if (revision === undefined) {
    o.log.warn('failed to unmarshal request', { error: 'invalid HashKVRequest' });
    peerHttpError(res, 400, 'error unmarshalling request');
    return;
  }
  let h: HashKVResult;
  try {
    h = await o.hashKV(revision);
  } catch (e) {
    if (!(e instanceof EtcdError) || (e.kind !== 'Compacted' && e.kind !== 'FutureRev')) throw e;
    const msg = e.kind === 'Compacted' ? mvccCompacted : mvccFutureRev;
    o.log.warn('failed to get hashKV', { 'requested-revision': revision, error: msg });
    peerHttpError(res, 400, msg);
    return;
  }
  res.writeHead(200, { 'X-Etcd-Cluster-ID': idToHex(o.clusterId), 'Content-Type': 'application/json' });
  res.end(hashKVResponseJson(h));
}

/** The revision of a JSON HashKVRequest (`{}` is 0), or undefined when it is not one. */
export function parseHashKVRequest(text: string): number | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text === '' ? 'null' : text);
  } catch {
    return undefined;
  }
  if (v === null) return 0; // Go unmarshals "null" into an untouched request
  if (typeof v !== 'object' || Array.isArray(v)) return undefined;
  const rev = (v as Record<string, unknown>).revision;
  if (rev === undefined || rev === null) return 0;
  return typeof rev === 'number' && Number.isSafeInteger(rev) ? rev : undefined;
}

/** Go's json.Marshal of a HashKVResponse: omitempty fields, the header with its revision only. */
export function hashKVResponseJson(h: HashKVResult): string {
  const header = h.revision !== 0 ? `{"revision":${h.revision}}` : '{}';
  let s = `{"header":${header}`;
  if (h.hash !== 0) s += `,"hash":${h.hash}`;
  if (h.compactRevision !== 0) s += `,"compact_revision":${h.compactRevision}`;
  return s + '}';
}

/** One peer's answer, or why there is none ('compacted' and 'future' are etcd's two expected errors). */
export type PeerHashKVResult =
  | { id: bigint; urls: string[]; resp: PeerHashKV }
  | { id: bigint; urls: string[]; error: 'compacted' | 'future' | Error };

/** etcd's getPeerHashKVHTTP: GET url/members/hashkv with `{"revision":rev}`. */
export async function fetchPeerHashKV(url: string, rev: number, tls: PeerClientTls | undefined, timeoutMs: number): Promise<PeerHashKV | 'compacted' | 'future'> {
  const body = Buffer.from(rev !== 0 ? `{"revision":${rev}}` : '{}');
  // Node sends a GET body unframed unless told its length (Go's client sets it too).
  const r = await peerCall({
    method: 'GET', url: url.replace(/\/$/, '') + peerHashKVPath, tls, timeoutMs, maxResponseBytes: maxHashKVResponseBytes,
    body, headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) },
  });
  const text = r.body.toString('utf8');
  if (r.status === 400 && text.includes(mvccCompacted)) return 'compacted';
  if (r.status === 400 && text.includes(mvccFutureRev)) return 'future';
  if (r.status !== 200) throw new Error(`unknown error: ${text}`);
  const v = JSON.parse(text) as { header?: { revision?: unknown }; hash?: unknown; compact_revision?: unknown };
  const num = (x: unknown): number => {
    if (x === undefined) return 0;
    if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new Error(`invalid HashKVResponse: ${text.slice(0, 200)}`);
    return x;
  };
  return { revision: num(v.header?.revision), hash: num(v.hash) >>> 0, compactRevision: num(v.compact_revision) };
}

export interface CorruptCheckDeps {
  memberId: bigint;
  log: Logger;
  /** The other members and their peer URLs. */
  peers: () => Array<{ id: bigint; peerURLs: string[] }>;
  /** The local store's HashByRev (waits while the backend file is swapped). */
  hashKV: (rev: number) => Promise<HashKVResult>;
  tls: PeerClientTls | undefined;
  /** etcd's ReqTimeout(): 5 s plus two election timeouts, per peer URL. */
  timeoutMs: number;
}

/** etcd's getPeerHashKVs: every peer, trying its URLs in order until one answers. */
export async function peerHashKVs(d: CorruptCheckDeps, rev: number): Promise<PeerHashKVResult[]> {
  const out: PeerHashKVResult[] = [];
  for (const p of d.peers()) {
    if (p.peerURLs.length === 0) continue;
    let last: 'compacted' | 'future' | Error = new Error('no answer');
    let answered = false;
    for (const url of p.peerURLs) {
      try {
        const r = await fetchPeerHashKV(url, rev, d.tls, d.timeoutMs);
        if (typeof r !== 'string') {
          out.push({ id: p.id, urls: p.peerURLs, resp: r });
          answered = true;
          break;
        }
        last = r;
      } catch (e) {
        last = e instanceof Error ? e : new Error(String(e));
      }
      const why = last === 'compacted' ? mvccCompacted : last === 'future' ? mvccFutureRev : last.message;
      d.log.warn('failed hash kv request', {
        'local-member-id': idToHex(d.memberId), 'requested-revision': rev, 'remote-peer-endpoint': url, error: why,
      });
    }
    if (!answered) out.push({ id: p.id, urls: p.peerURLs, error: last });
  }
  return out;
}

/**
 * etcd's CheckInitialHashKV: throws etcd's "<id> found data inconsistency with peers" when a
 * peer at the same compact revision has another hash. Peers that cannot answer are logged
 * and skipped, as etcd does (the check is best effort).
 */
export async function checkInitialHashKV(d: CorruptCheckDeps): Promise<void> {
  const self = idToHex(d.memberId);
  d.log.info('starting initial corruption check', { 'local-member-id': self, timeout: formatDuration(d.timeoutMs) });
  const local = await d.hashKV(0);
  const localFields = {
    'local-member-id': self, 'local-member-revision': local.revision,
    'local-member-compact-revision': local.compactRevision, 'local-member-hash': local.hash,
  };
  let mismatch = 0;
  for (const p of await peerHashKVs(d, local.revision)) {
    if ('resp' in p) {
      if (p.resp.hash === local.hash) continue;
      // etcd 3.4 names the peer by the answer's header member id, which its route leaves 0.
      const fields = {
        ...localFields, 'remote-peer-id': '0', 'remote-peer-endpoints': p.urls,
        'remote-peer-revision': p.resp.revision, 'remote-peer-compact-revision': p.resp.compactRevision, 'remote-peer-hash': p.resp.hash,
      };
      if (p.resp.compactRevision === local.compactRevision) {
        d.log.warn('found different hash values from remote peer', fields);
        mismatch++;
      } else {
        d.log.warn('found different compact revision values from remote peer', fields);
      }
    } else if (p.error === 'future') {
      d.log.warn('cannot fetch hash from slow remote peer', { ...localFields, 'remote-peer-id': idToHex(p.id), 'remote-peer-endpoints': p.urls });
    } else if (p.error === 'compacted') {
      d.log.warn('cannot fetch hash from remote peer; local member is behind', { ...localFields, 'remote-peer-id': idToHex(p.id), 'remote-peer-endpoints': p.urls });
    }
  }
  if (mismatch > 0) throw new Error(`${self} found data inconsistency with peers`);
  d.log.info('initial corruption checking passed; no corruption', { 'local-member-id': self });
}

export interface CorruptMonitorDeps extends CorruptCheckDeps {
  intervalMs: number;
  isLeader: () => boolean;
  /** Waits until a linearizable read could be served (etcd's linearizableReadNotify). */
  readNotify: () => Promise<void>;
  /** Proposes an alarm request through raft. */
  proposeAlarm: (req: AlarmRequest) => Promise<unknown>;
}

/** etcd's monitorKVHash: every interval, the leader runs checkHashKV. */
export class CorruptionMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly d: CorruptMonitorDeps) {}

  start(): void {
    this.d.log.info('enabled corruption checking', { 'local-member-id': idToHex(this.d.memberId), interval: formatDuration(this.d.intervalMs) });
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.running = false;
  }

  private schedule(): void {
    this.running = true;
    this.timer = setTimeout(() => {
      if (!this.running) return;
      const pass = this.d.isLeader() ? this.checkHashKV() : Promise.resolve();
      pass.catch((e: unknown) => this.d.log.warn('failed to check hash KV', { error: e instanceof Error ? e.message : String(e) }))
        .finally(() => { if (this.running) this.schedule(); });
    }, this.d.intervalMs);
    this.timer.unref();
  }

  /** etcd's checkHashKV: the leader's hash before and after a read barrier, then every follower's. */
  async checkHashKV(): Promise<void> {
    const { log } = this.d;
    const h1 = await this.d.hashKV(0);
    const peers = await peerHashKVs(this.d, h1.revision);
    await this.d.readNotify();
    const h2 = await this.d.hashKV(0);
    let alarmed = false;
    const mismatch = (): void => {
      if (alarmed) return;
      alarmed = true;
      // Which member is corrupt is not known, so etcd raises the alarm for member 0.
      const req = AlarmRequest.fromPartial({ action: AlarmAction.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT });
      this.d.proposeAlarm(req).catch((e: unknown) => log.warn('failed to raise the CORRUPT alarm', { error: String(e) }));
    };
    if (h2.hash !== h1.hash && h2.revision === h1.revision && h2.compactRevision === h1.compactRevision) {
      log.warn('found hash mismatch', {
        'revision-1': h1.revision, 'compact-revision-1': h1.compactRevision, 'hash-1': h1.hash,
        'revision-2': h2.revision, 'compact-revision-2': h2.compactRevision, 'hash-2': h2.hash,
      });
      mismatch();
    }
    let checked = 0;
    for (const p of peers) {
      if (!('resp' in p)) continue;
      checked++;
      const follower = idToHex(p.id);
      if (p.resp.revision > h2.revision) {
        log.warn("revision from follower must be less than or equal to leader's", { 'leader-revision': h2.revision, 'follower-revision': p.resp.revision, 'follower-peer-id': follower });
        mismatch();
      }
      if (p.resp.compactRevision > h2.compactRevision) {
        log.warn("compact revision from follower must be less than or equal to leader's", { 'leader-compact-revision': h2.compactRevision, 'follower-compact-revision': p.resp.compactRevision, 'follower-peer-id': follower });
        mismatch();
      }
      if (p.resp.compactRevision === h1.compactRevision && p.resp.hash !== h1.hash) {
        log.warn('same compact revision then hashes must match', {
          'leader-compact-revision': h2.compactRevision, 'leader-hash': h1.hash,
          'follower-compact-revision': p.resp.compactRevision, 'follower-hash': p.resp.hash, 'follower-peer-id': follower,
        });
        mismatch();
      }
    }
    log.info('finished peer corruption check', { 'number-of-peers-checked': checked });
  }
}
