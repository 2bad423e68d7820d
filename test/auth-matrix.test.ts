// The per-method auth matrix, compared with real etcd 3.4: every unary RPC of KV, Lease,
// Cluster, Maintenance and Auth, called with no token, a garbage token, a user's token (READWRITE
// on key "k" only), root's token, and a root token issued before an auth change (JWT tokens
// carry the revision they were issued at, so it is "old"). What etcd checks differs per method:
// MemberList, Status, MoveLeader, LeaseTimeToLive and LeaseLeases never look at the token; member
// changes and Maintenance's Defragment/Hash/HashKV need root (the latter with the auth store's raw
// texts, as Alarm's token errors); a lease revoke, or a put onto a lease, needs WRITE on every key
// attached to the lease.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectedTargets, startServer, b, type Server, type TargetName, type EtcdClient } from './harness.js';
import { matrixTests } from './matrix-compare.js';
import { etcdserverpb as pb } from '../src/proto/index.js';
import type { MessageFns } from '../src/proto/gen/etcdserverpb/rpc.js';

const dir = mkdtempSync(join(tmpdir(), 'concord-auth-matrix-'));
const keyFile = join(dir, 'hmac.key');
writeFileSync(keyFile, randomBytes(32).toString('hex'));
const servers: Server[] = [];
after(async () => {
  for (const s of servers) await s.destroy();
  rmSync(dir, { recursive: true, force: true });
});

interface Call {
  name: string;
  path: string;
  req: MessageFns<any>;
  res: MessageFns<any>;
  /** The request; `ids` are what the setup made (lease ids, the member id). */
  make(ids: Ids): unknown;
  /** Run as root before the call. */
  setup?(c: EtcdClient, root: string, ids: Ids): Promise<void>;
  /** Run as root after a call that succeeded (undo what it changed). */
  undo?(c: EtcdClient, root: string, res: any): Promise<void>;
}

interface Ids { memberId: bigint; nextLease: bigint; leaseOnK: bigint; leaseOnZ: bigint }

const kv = (m: string) => `/etcdserverpb.KV/${m}`;
const le = (m: string) => `/etcdserverpb.Lease/${m}`;
const cl = (m: string) => `/etcdserverpb.Cluster/${m}`;
const mt = (m: string) => `/etcdserverpb.Maintenance/${m}`;
const au = (m: string) => `/etcdserverpb.Auth/${m}`;

async function rootCall(c: EtcdClient, root: string, path: string, req: MessageFns<any>, res: MessageFns<any>, msg: unknown): Promise<any> {
  const o = await c.outcome(path, req, res, msg, root);
  assert.ok(o.ok, `setup ${path}: ${o.ok ? '' : o.message}`);
  return o.res;
}

/** Grants a lease as root and attaches `key` to it. */
async function leaseWithKey(c: EtcdClient, root: string, id: bigint, key: string): Promise<void> {
  await rootCall(c, root, le('LeaseGrant'), pb.LeaseGrantRequest, pb.LeaseGrantResponse, pb.LeaseGrantRequest.fromPartial({ ID: id, TTL: 600 }));
  await rootCall(c, root, kv('Put'), pb.PutRequest, pb.PutResponse, pb.PutRequest.fromPartial({ key: b(key), value: b('v'), lease: id }));
}

const calls: Call[] = [
  { name: 'Range k', path: kv('Range'), req: pb.RangeRequest, res: pb.RangeResponse, make: () => pb.RangeRequest.fromPartial({ key: b('k') }) },
  { name: 'Range z', path: kv('Range'), req: pb.RangeRequest, res: pb.RangeResponse, make: () => pb.RangeRequest.fromPartial({ key: b('z') }) },
  { name: 'Range k serializable', path: kv('Range'), req: pb.RangeRequest, res: pb.RangeResponse, make: () => pb.RangeRequest.fromPartial({ key: b('k'), serializable: true }) },
  { name: 'Put k', path: kv('Put'), req: pb.PutRequest, res: pb.PutResponse, make: () => pb.PutRequest.fromPartial({ key: b('k'), value: b('v') }) },
  { name: 'Put k lease(k)', path: kv('Put'), req: pb.PutRequest, res: pb.PutResponse, make: (i) => pb.PutRequest.fromPartial({ key: b('k'), value: b('v'), lease: i.leaseOnK }), setup: (c, r, i) => leaseWithKey(c, r, i.leaseOnK, 'k') },
  { name: 'Put k lease(z)', path: kv('Put'), req: pb.PutRequest, res: pb.PutResponse, make: (i) => pb.PutRequest.fromPartial({ key: b('k'), value: b('v'), lease: i.leaseOnZ }), setup: (c, r, i) => leaseWithKey(c, r, i.leaseOnZ, 'z') },
  { name: 'DeleteRange k', path: kv('DeleteRange'), req: pb.DeleteRangeRequest, res: pb.DeleteRangeResponse, make: () => pb.DeleteRangeRequest.fromPartial({ key: b('k') }) },
  { name: 'Txn put k', path: kv('Txn'), req: pb.TxnRequest, res: pb.TxnResponse, make: () => pb.TxnRequest.fromPartial({ success: [{ requestPut: pb.PutRequest.fromPartial({ key: b('k'), value: b('t') }) }] }) },
  { name: 'Compact', path: kv('Compact'), req: pb.CompactionRequest, res: pb.CompactionResponse, make: () => pb.CompactionRequest.fromPartial({ revision: 2 }) },
  { name: 'LeaseGrant', path: le('LeaseGrant'), req: pb.LeaseGrantRequest, res: pb.LeaseGrantResponse, make: (i) => pb.LeaseGrantRequest.fromPartial({ ID: i.nextLease, TTL: 600 }) },
  { name: 'LeaseRevoke lease(k)', path: le('LeaseRevoke'), req: pb.LeaseRevokeRequest, res: pb.LeaseRevokeResponse, make: (i) => ({ ID: i.leaseOnK }), setup: (c, r, i) => leaseWithKey(c, r, i.leaseOnK, 'k') },
  { name: 'LeaseRevoke lease(z)', path: le('LeaseRevoke'), req: pb.LeaseRevokeRequest, res: pb.LeaseRevokeResponse, make: (i) => ({ ID: i.leaseOnZ }), setup: (c, r, i) => leaseWithKey(c, r, i.leaseOnZ, 'z') },
  { name: 'LeaseRevoke no such lease', path: le('LeaseRevoke'), req: pb.LeaseRevokeRequest, res: pb.LeaseRevokeResponse, make: () => ({ ID: 999_999n }) },
  { name: 'LeaseTimeToLive', path: le('LeaseTimeToLive'), req: pb.LeaseTimeToLiveRequest, res: pb.LeaseTimeToLiveResponse, make: (i) => pb.LeaseTimeToLiveRequest.fromPartial({ ID: i.leaseOnZ }), setup: (c, r, i) => leaseWithKey(c, r, i.leaseOnZ, 'z') },
  { name: 'LeaseLeases', path: le('LeaseLeases'), req: pb.LeaseLeasesRequest, res: pb.LeaseLeasesResponse, make: () => ({}) },
  { name: 'MemberList', path: cl('MemberList'), req: pb.MemberListRequest, res: pb.MemberListResponse, make: () => pb.MemberListRequest.fromPartial({}) },
  {
    name: 'MemberAdd learner', path: cl('MemberAdd'), req: pb.MemberAddRequest, res: pb.MemberAddResponse,
    // A new peer URL each time: a member's ID hashes its URLs and the second, and re-adding a
    // removed ID within the same second is refused (etcd's "ID removed"), on both servers.
    make: (i) => pb.MemberAddRequest.fromPartial({ peerURLs: [`http://127.0.0.1:${Number(i.nextLease % 60_000n) + 1}`], isLearner: true }),
    undo: (c, r, res) => rootCall(c, r, cl('MemberRemove'), pb.MemberRemoveRequest, pb.MemberRemoveResponse, { ID: res.member.ID }),
  },
  { name: 'MemberRemove no such member', path: cl('MemberRemove'), req: pb.MemberRemoveRequest, res: pb.MemberRemoveResponse, make: () => ({ ID: 12345n }) },
  { name: 'MemberUpdate no such member', path: cl('MemberUpdate'), req: pb.MemberUpdateRequest, res: pb.MemberUpdateResponse, make: () => ({ ID: 12345n, peerURLs: ['http://127.0.0.1:2'] }) },
  { name: 'MemberPromote no such member', path: cl('MemberPromote'), req: pb.MemberPromoteRequest, res: pb.MemberPromoteResponse, make: () => ({ ID: 12345n }) },
  { name: 'Alarm get', path: mt('Alarm'), req: pb.AlarmRequest, res: pb.AlarmResponse, make: () => pb.AlarmRequest.fromPartial({}) },
  { name: 'Status', path: mt('Status'), req: pb.StatusRequest, res: pb.StatusResponse, make: () => ({}) },
  { name: 'Defragment', path: mt('Defragment'), req: pb.DefragmentRequest, res: pb.DefragmentResponse, make: () => ({}) },
  { name: 'Hash', path: mt('Hash'), req: pb.HashRequest, res: pb.HashResponse, make: () => ({}) },
  { name: 'HashKV', path: mt('HashKV'), req: pb.HashKVRequest, res: pb.HashKVResponse, make: () => ({ revision: 0 }) },
  { name: 'MoveLeader no such member', path: mt('MoveLeader'), req: pb.MoveLeaderRequest, res: pb.MoveLeaderResponse, make: () => ({ targetID: 12345n }) },
  { name: 'UserList', path: au('UserList'), req: pb.AuthUserListRequest, res: pb.AuthUserListResponse, make: () => ({}) },
  { name: 'UserGet u', path: au('UserGet'), req: pb.AuthUserGetRequest, res: pb.AuthUserGetResponse, make: () => ({ name: 'u' }) },
  { name: 'RoleGet rw', path: au('RoleGet'), req: pb.AuthRoleGetRequest, res: pb.AuthRoleGetResponse, make: () => ({ role: 'rw' }) },
  { name: 'RoleList', path: au('RoleList'), req: pb.AuthRoleListRequest, res: pb.AuthRoleListResponse, make: () => ({}) },
];

/** `env`: CONCORD_API_THREAD=1 runs Concord's transport on its worker thread (tokens cross to the main thread). */
async function matrix(target: TargetName, env: Record<string, string> = {}): Promise<string[]> {
  const s = await startServer({ target, env, extraArgs: ['--bcrypt-cost', '4', '--auth-token', `jwt,sign-method=HS256,priv-key=${keyFile}`] });
  servers.push(s);
  const ctl = async (args: string[]) => {
    const r = await s.etcdctl(args);
    assert.equal(r.code, 0, `${target} etcdctl ${args.join(' ')}: ${r.stderr}`);
  };
  await ctl(['user', 'add', 'root:rootpw', '--interactive=false']);
  await ctl(['user', 'add', 'u:upw', '--interactive=false']);
  await ctl(['role', 'add', 'rw']);
  await ctl(['role', 'grant-permission', 'rw', 'readwrite', 'k']);
  await ctl(['user', 'grant-role', 'u', 'rw']);
  await ctl(['put', 'k', 'v0']);
  await ctl(['auth', 'enable']);
  const c = s.client();
  const token = async (name: string, password: string) =>
    (await c.unary('/etcdserverpb.Auth/Authenticate', pb.AuthenticateRequest, pb.AuthenticateResponse, { name, password })).token;
  try {
    const oldRoot = await token('root', 'rootpw');
    await ctl(['role', 'add', 'other', '--user', 'root:rootpw']); // an auth change: oldRoot is now old
    const root = await token('root', 'rootpw');
    const memberId = (await c.memberList()).members[0]!.ID;
    const callers: Array<[string, string | undefined]> = [
      ['none', undefined], ['garbage', 'not.a.token'], ['u', await token('u', 'upw')], ['root', root], ['old-root', oldRoot],
    ];
    const out: string[] = [];
    let lease = 1000n;
    for (const [who, tok] of callers) {
      for (const call of calls) {
        const ids: Ids = { memberId, nextLease: ++lease, leaseOnK: ++lease, leaseOnZ: ++lease };
        await call.setup?.(c, root, ids);
        const o = await c.outcome(call.path, call.req, call.res, call.make(ids), tok);
        out.push(`${who} ${call.name}: ${o.ok ? 'ok' : `${o.code} ${o.message}`}`);
        if (o.ok) await call.undo?.(c, root, o.res);
      }
    }
    return out;
  } finally {
    c.close();
  }
}

describe('auth: every RPC with each kind of caller, as etcd answers (and in Concord\'s worker-thread API mode)', () => {
  matrixTests(matrix, (out) => {
    assert.ok(out.includes('u LeaseRevoke lease(z): 7 etcdserver: permission denied'), out.join('\n'));
    assert.ok(out.includes('garbage MemberList: ok'), out.join('\n'));
    assert.ok(out.includes('old-root Put k: 3 etcdserver: revision of auth store is old'), out.join('\n'));
  }, { workerThread: true });
});

describe('auth: leases still expire under auth (the leader revokes as root)', () => {
  for (const target of selectedTargets()) {
    test(`${target}: a key on an expiring lease is deleted at expiry`, async () => {
      const s = await startServer({ target, extraArgs: ['--bcrypt-cost', '4'] });
      servers.push(s);
      const ctl = async (args: string[]) => {
        const r = await s.etcdctl(args);
        assert.equal(r.code, 0, `${target} etcdctl ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      await ctl(['user', 'add', 'root:rootpw', '--interactive=false']);
      await ctl(['auth', 'enable']);
      const root = ['--user', 'root:rootpw'];
      const id = /lease ([0-9a-f]+) granted/.exec(await ctl(['lease', 'grant', '10', ...root]))![1]!;
      await ctl(['put', 'gone', 'v', `--lease=${id}`, ...root]);
      // Expiry is the leader's decision; bound the wait generously (a loaded machine).
      let left = 'gone';
      for (let i = 0; i < 180 && left !== ''; i++) {
        await new Promise((r) => setTimeout(r, 500));
        left = (await ctl(['get', 'gone', '--print-value-only', ...root])).trim();
      }
      assert.equal(left, '', 'the key went with its lease');
      assert.match(await ctl(['lease', 'timetolive', id]), /already expired/);
    });
  }
});
