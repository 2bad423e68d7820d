import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb as pb, PutRequest, authpb } from '../proto/index.js';
import { isEtcdError } from '../errors/index.js';
import { startTestMember } from './test-member.js';

const b = (s: string): Buffer => Buffer.from(s);

test('through raft: a write checked at apply against the auth revision its proposer saw; the log holds no clear password', async () => {
  const m = await startTestMember();
  try {
    const { server, wal } = m;
    const call = (op: Parameters<typeof server.auth.call>[0], req: unknown, ai = root()) => server.auth.call(op, req, ai);
    await call('userAdd', pb.AuthUserAddRequest.fromPartial({ name: 'root', password: 'rootpw-clear' }), undefined);
    await call('userGrantRole', { user: 'root', role: 'root' }, undefined);
    await call('roleAdd', { name: 'w' }, undefined);
    await call('roleGrantPermission', { name: 'w', perm: { permType: authpb.Permission_Type.WRITE, key: b('a'), rangeEnd: b('b') } }, undefined);
    await call('userAdd', pb.AuthUserAddRequest.fromPartial({ name: 'u', password: 'upw' }), undefined);
    await call('userGrantRole', { user: 'u', role: 'w' }, undefined);
    await call('authEnable', {}, undefined);
    // root as of now (the identity a root client certificate gives: the current auth revision).
    function root() { return server.auth.authInfoFromCommonName('root'); }

    const { token } = await server.auth.authenticate({ name: 'u', password: 'upw' });
    const seen = server.auth.authInfo(token);
    await server.put(PutRequest.fromPartial({ key: b('a1'), value: b('v') }), undefined, seen);
    await assert.rejects(server.put(PutRequest.fromPartial({ key: b('c'), value: b('v') }), undefined, seen), (e) => isEtcdError(e, 'PermissionDenied'));
    await assert.rejects(server.put(PutRequest.fromPartial({ key: b('a1'), value: b('v') })), (e) => isEtcdError(e, 'UserEmpty'));
    // Auth changes after the caller's revision was taken: its write is refused at apply.
    await call('roleAdd', { name: 'other' }, root());
    await assert.rejects(server.put(PutRequest.fromPartial({ key: b('a1'), value: b('v') }), undefined, seen), (e) => isEtcdError(e, 'AuthOldRevision'));
    await server.put(PutRequest.fromPartial({ key: b('a1'), value: b('v') }), undefined, server.auth.authInfo(token));
    await assert.rejects(server.auth.authenticate({ name: 'u', password: 'wrong' }), (e) => isEtcdError(e, 'AuthFailed'));

    const logged = Buffer.concat(wal.entries.map((e) => Buffer.from(e.data ?? new Uint8Array())));
    assert.ok(!logged.includes(b('rootpw-clear')), 'no clear password in the log');
    assert.ok(logged.includes(b('$2')), 'the bcrypt hash is in the log');
  } finally {
    await m.close();
  }
});
