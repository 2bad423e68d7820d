// The auth matrix for what auth-matrix.test.ts leaves out, compared with real etcd 3.4: the
// streaming calls (a Watch created over each kind of range, LeaseKeepAlive) and the v3lock and
// v3election services, called by root, a read-only, a write-only and a readwrite user (each on
// prefix "p/"), no token and a garbage token. Each answer is recorded as the caller sees it: the
// watch's created/canceled reply, the keep-alive's first reply, a recipe's result or status.
// Leases get explicit IDs so recipe keys ("<name>/<lease hex>") are the same on both servers;
// root revokes each lease after its step, which deletes whatever a half-done recipe left.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startServer, b, type Server, type TargetName, type EtcdClient } from './harness.js';
import { matrixTests } from './matrix-compare.js';
import { etcdserverpb as pb, v3electionpb as epb, v3lockpb as lpb } from '../src/proto/index.js';
import type { MessageFns } from '../src/proto/gen/etcdserverpb/rpc.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** Generous bound on one call (a loaded machine); a recipe that waits past it is recorded as such. */
const callMs = 15_000;
const ser = <T>(f: MessageFns<T>) => (m: T) => Buffer.from(f.encode(m).finish());
const des = <T>(f: MessageFns<T>) => (x: Buffer) => f.decode(x);
const text = (u: Uint8Array | undefined): string => Buffer.from(u ?? []).toString();

function metadata(token: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('token', token);
  return md;
}

function statusText(e: grpc.ServiceError): string {
  return e.code === grpc.status.DEADLINE_EXCEEDED ? 'still waiting at the deadline' : `${e.code} ${e.details}`;
}

/** A unary call's result as `show` summarizes it, or its status. */
function unary<Req, Res>(c: EtcdClient, path: string, req: MessageFns<Req>, res: MessageFns<Res>, msg: Req, token: string | undefined,
  show: (r: Res) => string): Promise<string> {
  return new Promise((resolve) => {
    c.raw.makeUnaryRequest(path, ser(req), des(res), msg, metadata(token), { deadline: Date.now() + callMs },
      (err, r) => resolve(err ? statusText(err) : `ok ${show(r as Res)}`));
  });
}

/** The first message of a stream (server or bidi, `first` sent), summarized, or how it ended. */
function firstMessage<Req, Res>(c: EtcdClient, path: string, req: MessageFns<Req>, res: MessageFns<Res>, first: Req, token: string | undefined,
  bidi: boolean, show: (r: Res) => string): Promise<string> {
  return new Promise((resolve) => {
    const opts = { deadline: Date.now() + callMs };
    const call = bidi
      ? c.raw.makeBidiStreamRequest(path, ser(req), des(res), metadata(token), opts)
      : c.raw.makeServerStreamRequest(path, ser(req), des(res), first, metadata(token), opts);
    let settled = false;
    const settle = (s: string): void => { if (!settled) { settled = true; resolve(s); call.cancel(); } };
    call.on('data', (m: Res) => settle(`ok ${show(m)}`));
    call.on('error', (e: grpc.ServiceError) => settle(statusText(e)));
    call.on('end', () => settle('ended without a message'));
    if (bidi) (call as grpc.ClientDuplexStream<Req, Res>).write(first);
  });
}

const prefixEnd = (p: string): string => p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
/** Watch ranges: inside the grant, exactly it, around it, outside it, everything. */
const watchRanges: Array<[string, string, string]> = [
  ['key p/a', 'p/a', ''],
  ['prefix p/', 'p/', prefixEnd('p/')],
  ['range p/a..p/z', 'p/a', 'p/z'],
  ['key q', 'q', ''],
  ['range o..p/z', 'o', 'p/z'],
  ['from-key p/', 'p/', '\0'],
  ['all keys', '\0', '\0'],
];

const showWatch = (r: pb.WatchResponse): string => `created=${r.created} canceled=${r.canceled} reason=${JSON.stringify(r.cancelReason)}`;
const showKv = (kv: { key: Uint8Array; value: Uint8Array } | undefined): string => (kv ? `${text(kv.key)}=${text(kv.value)}` : 'none');
const showLeader = (l: epb.LeaderKey | undefined): string => (l ? `${text(l.name)} ${text(l.key)} lease=${l.lease}` : 'none');

async function matrix(target: TargetName): Promise<string[]> {
  const s = await startServer({ target, extraArgs: ['--bcrypt-cost', '4'] });
  servers.push(s);
  const ctl = async (args: string[]) => {
    const r = await s.etcdctl(args);
    assert.equal(r.code, 0, `${target} etcdctl ${args.join(' ')}: ${r.stderr}`);
  };
  await ctl(['user', 'add', 'root:rootpw', '--interactive=false']);
  for (const [user, perm] of [['ro', 'read'], ['wo', 'write'], ['rw', 'readwrite']] as const) {
    await ctl(['user', 'add', `${user}:pw`, '--interactive=false']);
    await ctl(['role', 'add', `${user}-role`]);
    await ctl(['role', 'grant-permission', `${user}-role`, perm, 'p/', '--prefix=true']);
    await ctl(['user', 'grant-role', user, `${user}-role`]);
  }
  await ctl(['put', 'p/a', 'v0']);
  await ctl(['auth', 'enable']);
  const c = s.client();
  const token = async (name: string, password: string) =>
    (await c.unary('/etcdserverpb.Auth/Authenticate', pb.AuthenticateRequest, pb.AuthenticateResponse, { name, password })).token;
  try {
    const root = await token('root', 'rootpw');
    const asRoot = async <Req, Res>(path: string, req: MessageFns<Req>, res: MessageFns<Res>, msg: Req): Promise<Res> =>
      c.unary(path, req, res, msg, callMs, root);
    const grant = (ID: bigint) => asRoot('/etcdserverpb.Lease/LeaseGrant', pb.LeaseGrantRequest, pb.LeaseGrantResponse, pb.LeaseGrantRequest.fromPartial({ ID, TTL: 600 }));
    const revoke = (ID: bigint) => asRoot('/etcdserverpb.Lease/LeaseRevoke', pb.LeaseRevokeRequest, pb.LeaseRevokeResponse, { ID });
    const callers: Array<[string, string | undefined]> = [
      ['root', root], ['ro', await token('ro', 'pw')], ['wo', await token('wo', 'pw')], ['rw', await token('rw', 'pw')],
      ['none', undefined], ['garbage', 'not.a.token'],
    ];
    const out: string[] = [];
    const record = (who: string, what: string, answer: string): void => { out.push(`${who} ${what}: ${answer}`); };
    let lease = 0x1000n;
    for (const [who, tok] of callers) {
      for (const [name, key, end] of watchRanges) {
        const create = pb.WatchRequest.fromPartial({ createRequest: { key: b(key), rangeEnd: b(end) } });
        record(who, `Watch ${name}`, await firstMessage(c, '/etcdserverpb.Watch/Watch', pb.WatchRequest, pb.WatchResponse, create, tok, true, showWatch));
      }

      const ka = ++lease;
      await grant(ka);
      await asRoot('/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, pb.PutRequest.fromPartial({ key: b('q/leased'), value: b('v'), lease: ka }));
      record(who, 'LeaseKeepAlive lease(q/leased)', await firstMessage(c, '/etcdserverpb.Lease/LeaseKeepAlive', pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse,
        { ID: ka }, tok, true, (r) => `ID=${r.ID} TTL>0=${r.TTL > 0n}`));
      record(who, 'LeaseKeepAlive no such lease', await firstMessage(c, '/etcdserverpb.Lease/LeaseKeepAlive', pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse,
        { ID: 77n }, tok, true, (r) => `ID=${r.ID} TTL=${r.TTL}`));
      await revoke(ka);

      for (const name of [`p/lock-${who}`, `q/lock-${who}`]) {
        const l = ++lease;
        await grant(l);
        const locked = await unary(c, '/v3lockpb.Lock/Lock', lpb.LockRequest, lpb.LockResponse, { name: b(name), lease: l }, tok, (r) => text(r.key));
        record(who, `Lock ${name.split('-')[0]}`, locked);
        if (locked.startsWith('ok ')) {
          record(who, `Unlock ${name.split('-')[0]}`, await unary(c, '/v3lockpb.Lock/Unlock', lpb.UnlockRequest, lpb.UnlockResponse, { key: b(locked.slice(3)) }, tok, () => ''));
        }
        await revoke(l);
      }

      for (const name of ['p/el', 'q/el']) {
        const base = name.split('/')[0];
        // Root leads; the caller asks, observes, proclaims and resigns in root's name.
        const rl = ++lease;
        await grant(rl);
        const leader = (await asRoot('/v3electionpb.Election/Campaign', epb.CampaignRequest, epb.CampaignResponse, { name: b(name), lease: rl, value: b('root') })).leader;
        record(who, `Leader ${base}`, await unary(c, '/v3electionpb.Election/Leader', epb.LeaderRequest, epb.LeaderResponse, { name: b(name) }, tok, (r) => showKv(r.kv)));
        record(who, `Observe ${base}`, await firstMessage(c, '/v3electionpb.Election/Observe', epb.LeaderRequest, epb.LeaderResponse, { name: b(name) }, tok, false, (r) => showKv(r.kv)));
        record(who, `Proclaim ${base}`, await unary(c, '/v3electionpb.Election/Proclaim', epb.ProclaimRequest, epb.ProclaimResponse, { leader, value: b(`by-${who}`) }, tok, () => ''));
        record(who, `Resign ${base}`, await unary(c, '/v3electionpb.Election/Resign', epb.ResignRequest, epb.ResignResponse, { leader }, tok, () => ''));
        await revoke(rl);
        const cl = ++lease;
        await grant(cl);
        record(who, `Campaign ${base}`, await unary(c, '/v3electionpb.Election/Campaign', epb.CampaignRequest, epb.CampaignResponse,
          { name: b(name), lease: cl, value: b(who) }, tok, (r) => showLeader(r.leader)));
        await revoke(cl);
      }
    }
    return out;
  } finally {
    c.close();
  }
}

describe('auth: Watch, LeaseKeepAlive, Lock and Election with each kind of caller, as etcd answers', () => {
  // etcd 3.4 turns a watch's from-key range end ("\0") into an empty one before its permission
  // check, so it checks the start key alone: READ on "p/" lets a user watch every key from "p/"
  // on. Concord checks the whole range [p/, end of keyspace) and refuses, on purpose.
  const fromKey = (l: string): boolean => / Watch from-key p\/: /.test(l);
  matrixTests(matrix, (out, target) => {
    // A reader may watch its prefix, not beyond it.
    assert.ok(out.some((l) => l.startsWith('ro Watch prefix p/: ok created=true canceled=false')), out.join('\n'));
    assert.ok(out.some((l) => l.startsWith('ro Watch key q: ok created=true canceled=true')), out.join('\n'));
    if (target === 'concord') {
      for (const who of ['ro', 'rw']) assert.ok(out.some((l) => l.startsWith(`${who} Watch from-key p/: ok created=true canceled=true`)), out.join('\n'));
    }
  }, { deliberate: fromKey });
});
