import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Backend } from '../storage/index.js';
import { nopLogger } from '../log/index.js';
import { authpb, etcdserverpb as pb, InternalRaftRequest } from '../proto/index.js';
import { isEtcdError, type ErrorKind } from '../errors/index.js';
import { AuthStore, IntervalUnion, permissionInterval, SimpleTokens, encodeAuthRequest, authRequestOf, hashPassword, passwordMatches, type AuthRequest, type AuthInfo } from './index.js';

const b = (s: string): Buffer => Buffer.from(s);

function throwsKind(fn: () => unknown, kind: ErrorKind): void {
  assert.throws(fn, (e: unknown) => isEtcdError(e, kind), `expected ${kind}`);
}

test('merged permissions: points, ranges, from-key; a range must be covered as a whole', () => {
  const u = new IntervalUnion([permissionInterval(b('k'), b('')), permissionInterval(b('p/'), b('p0')), permissionInterval(b('p0'), b('p2')), permissionInterval(b('z'), b('\0'))]);
  assert.ok(u.containsKey(b('k')));
  assert.ok(!u.containsKey(b('k0')));
  assert.ok(u.contains(b('p/a'), b('p1'))); // spans two touching grants
  assert.ok(!u.contains(b('p/a'), b('p3')));
  assert.ok(u.contains(b('z'), b(''))); // from-key to the end
  assert.ok(u.containsKey(b('zzzz')));
  assert.ok(!u.contains(b('y'), b('')));
  assert.ok(!new IntervalUnion([]).containsKey(b('a')));
});

test('simple tokens: "<16 letters>.<index>", refreshed on use, expire after the TTL, dropped with their user', () => {
  let now = 0;
  const t = new SimpleTokens(1000, 3, () => now);
  t.enable();
  const prefix = SimpleTokens.genPrefix();
  assert.match(prefix, /^[a-zA-Z]{16}$/);
  const tok = t.assign('alice', prefix, 42);
  assert.equal(tok, `${prefix}.42`);
  now = 900;
  assert.equal(t.userOf(tok), 'alice');
  now = 1800; // 900 after the last use
  assert.equal(t.userOf(tok), 'alice');
  now = 2801;
  assert.equal(t.userOf(tok), undefined);
  for (let i = 0; i < 5; i++) t.assign('bob', 'x', i);
  assert.equal(t.size, 3, 'bounded');
  t.invalidateUser('bob');
  assert.equal(t.size, 0);
});

test('raft entry: the password never travels in clear, the hash does (etcd 3.5 hashedPassword)', () => {
  const r: AuthRequest = { op: 'userAdd', req: pb.AuthUserAddRequest.fromPartial({ name: 'u', password: 'secret' }), hashedPassword: '$2b$04$hash' };
  const w = new BinaryWriter();
  encodeAuthRequest(r, w);
  const data = w.finish();
  assert.ok(!Buffer.from(data).includes(b('secret')));
  const back = authRequestOf(InternalRaftRequest.decode(data), data);
  assert.deepEqual(back, { op: 'userAdd', req: pb.AuthUserAddRequest.fromPartial({ name: 'u', password: '' }), hashedPassword: '$2b$04$hash' });
  const cp: AuthRequest = { op: 'userChangePassword', req: pb.AuthUserChangePasswordRequest.fromPartial({ name: 'u', password: 'p2' }), hashedPassword: 'h2' };
  const w2 = new BinaryWriter();
  encodeAuthRequest(cp, w2);
  const d2 = w2.finish();
  assert.equal((authRequestOf(InternalRaftRequest.decode(d2), d2) as { hashedPassword: string }).hashedPassword, 'h2');
});

test('bcrypt: a hash matches its password only; a malformed hash matches nothing', async () => {
  const h = await hashPassword('pw', 4);
  assert.ok(await passwordMatches('pw', b(h)));
  assert.ok(!(await passwordMatches('nope', b(h))));
  assert.ok(!(await passwordMatches('pw', b('not a hash'))));
  // etcd (Go's x/crypto/bcrypt) stores "$2a$" hashes: they verify too.
  // (2a and 2b hash a short ASCII password identically; only the label differs.)
  const goStyle = h.replace(/^\$2b\$/, '$2a$');
  assert.match(goStyle, /^\$2a\$04\$/);
  assert.ok(await passwordMatches('pw', b(goStyle)));
});

test('auth store: etcd rules, buckets as etcd writes them, the auth revision, recovery after reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-auth-'));
  const path = join(dir, 'db');
  let be = Backend.open({ path });
  try {
    let st = new AuthStore({ backend: be, log: nopLogger(), tokenTtlMs: 1000 });
    assert.equal(st.revision, 1, 'a fresh store starts at revision 1, as etcd');
    const nobody: AuthInfo = { username: '', revision: 0 };
    const apply = (r: AuthRequest, ai: AuthInfo = nobody, index = 1) => st.apply(r, ai, index);
    throwsKind(() => apply({ op: 'authEnable', req: {} }), 'RootUserNotExist');
    apply({ op: 'userAdd', req: pb.AuthUserAddRequest.fromPartial({ name: 'root' }), hashedPassword: await hashPassword('rootpw', 4) });
    throwsKind(() => apply({ op: 'userAdd', req: pb.AuthUserAddRequest.fromPartial({ name: 'root' }), hashedPassword: 'x' }), 'UserAlreadyExist');
    throwsKind(() => apply({ op: 'userAdd', req: pb.AuthUserAddRequest.fromPartial({ name: '' }), hashedPassword: 'x' }), 'UserEmpty');
    throwsKind(() => apply({ op: 'authEnable', req: {} }), 'RootRoleNotExist');
    // Names LMDB cannot key: empty ones are found nowhere, too long ones refused (never a crash).
    throwsKind(() => apply({ op: 'userGet', req: { name: '' } }), 'UserNotFound');
    throwsKind(() => apply({ op: 'roleGrantPermission', req: { name: '', perm: undefined } }), 'RoleNotFound');
    throwsKind(() => apply({ op: 'userGrantRole', req: { user: 'root', role: '' } }), 'RoleNotFound');
    throwsKind(() => apply({ op: 'roleAdd', req: { name: 'r'.repeat(2000) } }), 'AuthNameTooLong');
    throwsKind(() => apply({ op: 'userDelete', req: { name: 'u'.repeat(2000) } }), 'UserNotFound');
    apply({ op: 'userGrantRole', req: { user: 'root', role: 'root' } });
    apply({ op: 'roleAdd', req: { name: 'r' } });
    apply({ op: 'roleGrantPermission', req: { name: 'r', perm: { permType: authpb.Permission_Type.WRITE, key: b('p/'), rangeEnd: b('p0') } } });
    apply({ op: 'userAdd', req: pb.AuthUserAddRequest.fromPartial({ name: 'u', options: { noPassword: true } }), hashedPassword: '' });
    apply({ op: 'userGrantRole', req: { user: 'u', role: 'r' } });
    const revBeforeEnable = st.revision;
    apply({ op: 'authEnable', req: {} });
    assert.equal(st.revision, revBeforeEnable, 'enabling does not bump the revision (etcd 3.4)');
    // The buckets hold etcd's encodings.
    const raw = be.get('authUsers', b('u'))!;
    assert.deepEqual(authpb.User.decode(raw), { name: b('u'), password: Buffer.alloc(0), roles: ['r'], options: { noPassword: true } });
    assert.deepEqual(be.get('auth', b('authEnabled')), Buffer.from([1]));
    assert.equal(be.get('auth', b('authRevision'))!.readBigUInt64BE(0), BigInt(st.revision));
    // Checks.
    const u: AuthInfo = { username: 'u', revision: st.revision };
    st.checkPut(u, b('p/x'));
    throwsKind(() => st.checkPut(u, b('q')), 'PermissionDenied');
    throwsKind(() => st.checkRange(u, b('p/x'), b('')), 'PermissionDenied');
    throwsKind(() => st.checkPut(undefined, b('p/x')), 'UserEmpty');
    throwsKind(() => apply({ op: 'userList', req: {} }, u), 'PermissionDenied');
    throwsKind(() => apply({ op: 'userDelete', req: { name: 'root' } }, { username: 'root', revision: st.revision }), 'InvalidAuthMgmt');
    throwsKind(() => apply({ op: 'authenticate', name: 'u', simpleToken: 'x' }), 'AuthFailed'); // no-password user
    // A write checked at an older auth revision than the store's is refused.
    apply({ op: 'roleRevokePermission', req: { role: 'r', key: b('p/'), rangeEnd: b('p0') } }, { username: 'root', revision: st.revision });
    throwsKind(() => st.checkPut(u, b('p/x')), 'AuthOldRevision');
    throwsKind(() => st.checkPut({ username: 'u', revision: st.revision }, b('p/x')), 'PermissionDenied');
    const token = (apply({ op: 'authenticate', name: 'root', simpleToken: 'abcdefghijklmnop' }, nobody, 77) as pb.AuthenticateResponse).token;
    assert.equal(token, 'abcdefghijklmnop.77');
    assert.deepEqual(st.authInfoFromToken(token), { username: 'root', revision: st.revision });
    throwsKind(() => st.authInfoFromToken('nope.1'), 'InvalidAuthToken');
    const rev = st.revision;
    await be.close();
    be = Backend.open({ path });
    st = new AuthStore({ backend: be, log: nopLogger(), tokenTtlMs: 1000 });
    assert.ok(st.enabled);
    assert.equal(st.revision, rev);
    throwsKind(() => st.checkRange({ username: 'u', revision: rev }, b('p/x'), b('')), 'PermissionDenied');
    st.checkRange({ username: 'root', revision: rev }, b(''), b('\0'));
  } finally {
    await be.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
