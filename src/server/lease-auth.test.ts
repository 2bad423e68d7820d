// Lease permission checks as etcd 3.4 makes them at apply (etcdserver/apply_auth.go
// checkLeasePuts): revoking a lease, or attaching a key to a lease, needs WRITE on every key
// the lease holds, checked against the identity in the proposal's header; the leader's
// expiry revokes as root, so leases still expire under auth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb as pb, PutRequest, authpb } from '../proto/index.js';
import { isEtcdError } from '../errors/index.js';
import { nopLogger } from '../log/index.js';
import { startTestMember, type TestMember } from './test-member.js';
import { LeaseExpiry, rootWhileAuthOn } from './lease-expiry.js';

const b = (s: string): Buffer => Buffer.from(s);

/** root, and u with WRITE on [a, b); auth on. */
async function withAuth(m: TestMember): Promise<{ token: string }> {
  const { server } = m;
  const root = () => server.auth.authInfoFromCommonName('root');
  const call = (op: Parameters<typeof server.auth.call>[0], req: unknown) => server.auth.call(op, req, root());
  await call('userAdd', pb.AuthUserAddRequest.fromPartial({ name: 'root', password: 'rootpw' }));
  await call('userGrantRole', { user: 'root', role: 'root' });
  await call('roleAdd', { name: 'w' });
  await call('roleGrantPermission', { name: 'w', perm: { permType: authpb.Permission_Type.WRITE, key: b('a'), rangeEnd: b('b') } });
  await call('userAdd', pb.AuthUserAddRequest.fromPartial({ name: 'u', password: 'upw' }));
  await call('userGrantRole', { user: 'u', role: 'w' });
  await call('authEnable', {});
  const { token } = await server.auth.authenticate({ name: 'u', password: 'upw' });
  return { token };
}

test('lease revoke and lease puts need WRITE on every attached key, checked at apply with the proposer in the header', async () => {
  const m = await startTestMember();
  try {
    const { server } = m;
    const { token } = await withAuth(m);
    const root = server.auth.authInfoFromCommonName('root');
    const u = () => server.auth.authInfo(token);
    await server.propose({ kind: 'leaseGrant', req: { ID: 7n, TTL: 600 } }, u());
    await server.propose({ kind: 'leaseGrant', req: { ID: 8n, TTL: 600 } }, u());
    // u may attach its own key; root attaches one u may not write.
    await server.put(PutRequest.fromPartial({ key: b('a1'), value: b('v'), lease: 7n }), undefined, u());
    await server.put(PutRequest.fromPartial({ key: b('c'), value: b('v'), lease: 8n }), undefined, root);
    // A put of u's own key with lease 8 would let u's later revoke delete c: refused.
    await assert.rejects(server.put(PutRequest.fromPartial({ key: b('a2'), value: b('v'), lease: 8n }), undefined, u()), (e) => isEtcdError(e, 'PermissionDenied'));
    await assert.rejects(server.propose({ kind: 'leaseRevoke', req: { ID: 8n } }, u()), (e) => isEtcdError(e, 'PermissionDenied'));
    await assert.rejects(server.propose({ kind: 'leaseRevoke', req: { ID: 8n } }), (e) => isEtcdError(e, 'UserEmpty'));
    assert.ok(m.lessor.has(8n), 'lease 8 kept');
    await server.propose({ kind: 'leaseRevoke', req: { ID: 7n } }, u());
    assert.ok(!m.lessor.has(7n), 'u revokes the lease holding only its key');
    await server.propose({ kind: 'leaseRevoke', req: { ID: 8n } }, root);
    assert.ok(!m.lessor.has(8n), 'root revokes any lease');
  } finally {
    await m.close();
  }
});

test('under auth, the leader revokes expired leases as root (etcd WithRoot)', async () => {
  const clock = { now: 0 };
  const m = await startTestMember({ clock: () => clock.now });
  const e = new LeaseExpiry({
    lessor: m.lessor, clock: () => clock.now, log: nopLogger(), electionTimeoutMs: 1000, checkpoints: false,
    revoker: rootWhileAuthOn(m.auth), propose: (r, ai) => m.server.propose(r, ai),
  });
  try {
    const { server } = m;
    await withAuth(m);
    const root = server.auth.authInfoFromCommonName('root');
    await server.propose({ kind: 'leaseGrant', req: { ID: 5n, TTL: 10 } }, root);
    await server.put(PutRequest.fromPartial({ key: b('c'), value: b('v'), lease: 5n }), undefined, root);
    e.promote();
    clock.now = 60_000;
    e.tick();
    for (let i = 0; i < 10_000 && m.lessor.has(5n); i++) await new Promise((r) => setImmediate(r));
    assert.ok(!m.lessor.has(5n), 'the expired lease is revoked');
  } finally {
    e.stop();
    await m.close();
  }
});
