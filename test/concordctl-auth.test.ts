// concordctl's user, role and auth commands against real etcdctl's (test/ctl-differ.ts): the
// management script of test/auth.test.ts, then every output format of each command, password
// prompts read from stdin (speakeasy and fmt.Scanf), permission ranges (--prefix, --from-key,
// an end key, the empty key) and their argument errors, and commands run as users after auth
// is enabled. Each tool runs on its own fresh member of the same kind, etcd and then Concord.
//
// Run one side only with CONCORD_TESTS_ETCD_ONLY=1 / CONCORD_TESTS_CONCORD_ONLY=1 (harness.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectedTargets } from './harness.js';
import {
  AuthUserGetResponse, AuthUserListResponse, AuthRoleGetResponse, AuthRoleListResponse, AuthRoleAddResponse,
  type MessageFns,
} from '../src/proto/gen/etcdserverpb/rpc.js';
import { differ, startSides, stopSides, type Step } from './ctl-differ.js';

const root = ['--user', 'root:rootpw'];
const pb = (m: unknown) => m as MessageFns<unknown>;

/** test/auth.test.ts's management script, with auth still off, as steps. */
const beforeEnable: Step[] = [
  { args: ['auth', 'enable'] }, // no root user yet
  { args: ['user', 'add', 'root:rootpw', '--interactive=false'] },
  { args: ['user', 'add', 'root:other', '--interactive=false'] },
  { args: ['user', 'grant-role', 'root', 'nosuch'] },
  { args: ['role', 'add', 'reader'] },
  { args: ['role', 'add', 'reader'] },
  { args: ['role', 'add', 'writer'] },
  { args: ['role', 'add', 'rw'] },
  ...([['reader', 'read'], ['writer', 'write'], ['rw', 'readwrite']] as const).flatMap(([role, perm]): Step[] => [
    { args: ['role', 'grant-permission', role, perm, 'k'] },
    { args: ['role', 'grant-permission', role, perm, 'p/', '--prefix'] },
    { args: ['role', 'grant-permission', role, perm, 'z', '--from-key'] },
  ]),
  { args: ['role', 'grant-permission', 'rw', 'read', 'k'] },
  { args: ['role', 'grant-permission', 'rw', 'readwrite', 'k'] },
  { args: ['role', 'grant-permission', 'nosuch', 'read', 'k'] },
  ...['alice', 'bob', 'carol', 'dave'].map((u): Step => ({ args: ['user', 'add', `${u}:${u}pw`, '--interactive=false'] })),
  { args: ['user', 'grant-role', 'alice', 'reader'] },
  { args: ['user', 'grant-role', 'bob', 'writer'] },
  { args: ['user', 'grant-role', 'carol', 'rw'] },
  { args: ['user', 'grant-role', 'dave', 'reader'] },
  { args: ['user', 'grant-role', 'dave', 'writer'] },
  { args: ['user', 'grant-role', 'dave', 'writer'] },
];

/** What test/auth.test.ts leaves out: formats, prompts, ranges and argument errors (auth off). */
const formatsAndArgs: Step[] = [
  { args: ['role', 'add', 'ranges', '-w', 'json'] },
  { args: ['role', 'add', 'ranges2', '-w', 'fields'] },
  { args: ['role', 'add', 'ranges3', '-w', 'protobuf'], protobuf: pb(AuthRoleAddResponse) },
  { args: ['role', 'add', 'ranges4', '-w', 'table'] },
  { args: ['role', 'grant-permission', 'ranges', 'read', 'a', 'c'] },
  { args: ['role', 'grant-permission', 'ranges', 'write', '', '--prefix'] },
  { args: ['role', 'grant-permission', 'ranges', 'READWRITE', '', '--from-key'] },
  { args: ['role', 'grant-permission', 'ranges', 'read', ''] },
  { args: ['role', 'grant-permission', 'ranges', 'write', 'x\u00ff', '--prefix'] },
  { args: ['role', 'grant-permission', 'ranges', 'read', '', '--prefix', '--from-key'] },
  { args: ['role', 'grant-permission', 'ranges', 'read', 'a', '--prefix', '--from-key'] },
  { args: ['role', 'grant-permission', 'ranges', 'read', 'a', 'b', '--prefix'] },
  { args: ['role', 'grant-permission', 'ranges', 'read', 'a', 'b', '--from-key'] },
  { args: ['role', 'grant-permission', 'ranges', 'execute', 'a'] },
  { args: ['role', 'grant-permission', 'ranges', 'read'] },
  { args: ['role', 'grant-permission', 'ranges', 'read', 'k', '-w', 'json'] },
  { args: ['role', 'get', 'ranges'] },
  { args: ['role', 'get', 'ranges', '-w', 'json'] },
  { args: ['role', 'get', 'ranges', '-w', 'fields'] },
  { args: ['role', 'get', 'ranges', '-w', 'protobuf'], protobuf: pb(AuthRoleGetResponse) },
  { args: ['role', 'get', 'ranges', '-w', 'table'] },
  { args: ['role', 'list', '-w', 'json'] },
  { args: ['role', 'list', '-w', 'fields'] },
  { args: ['role', 'list', '-w', 'protobuf'], protobuf: pb(AuthRoleListResponse) },
  { args: ['role', 'revoke-permission', 'ranges', 'a', 'c'] },
  { args: ['role', 'revoke-permission', 'ranges', '', '--from-key'] },
  { args: ['role', 'revoke-permission', 'ranges', 'k', '-w', 'fields'] },
  { args: ['role', 'revoke-permission', 'ranges', 'x\u00ff', '--prefix'] },
  { args: ['role', 'revoke-permission', 'ranges', 'zz', '--from-key'] },
  { args: ['role', 'revoke-permission', 'ranges'] },
  { args: ['role', 'get', 'ranges'] },
  { args: ['role', 'add'] },
  { args: ['role', 'get', 'a', 'b'] },
  { args: ['role', 'list', 'x'] },
  { args: ['role', 'delete'] },
  { args: ['role', 'delete', 'ranges4', '-w', 'json'] },
  // passwords: flag, prompts (stdin is a pipe: stty's complaints on stderr, as etcdctl's speakeasy), Scanf
  { args: ['user', 'add', 'p1', '--new-user-password', 'secret'] },
  { args: ['user', 'add', 'p2', '--no-password', '-w', 'fields'] },
  { args: ['user', 'add', 'p3'], stdin: 'pw\npw\n' },
  { args: ['user', 'add', 'p4'], stdin: 'pw\nother\n' },
  { args: ['user', 'add', 'p5'], stdin: '' },
  { args: ['user', 'add', 'p6', '--interactive=false'], stdin: '  two words\n' },
  { args: ['user', 'add', 'p7', '--interactive=false'], stdin: '\n' },
  { args: ['user', 'add', 'p8:', '-w', 'json'] },
  { args: ['user', 'add', ':x'] },
  { args: ['user', 'add'] },
  { args: ['user', 'add', 'a', 'b'] },
  { args: ['user', 'passwd', 'p1'], stdin: 'new\nnew\n' },
  { args: ['user', 'passwd', 'p1', '--interactive=false', '-w', 'json'], stdin: 'newer\n' },
  { args: ['user', 'passwd', 'nosuch', '--interactive=false'], stdin: 'x\n' },
  { args: ['user', 'passwd'] },
  { args: ['user', 'grant-role', 'p1', 'ranges', '-w', 'fields'] },
  { args: ['user', 'grant-role', 'p1', 'reader', '-w', 'json'] },
  { args: ['user', 'grant-role', 'p1'] },
  { args: ['user', 'get', 'p1'] },
  { args: ['user', 'get', 'p1', '--detail'] },
  { args: ['user', 'get', 'p1', '--detail', '-w', 'json'] },
  { args: ['user', 'get', 'p1', '-w', 'json'] },
  { args: ['user', 'get', 'p1', '-w', 'fields'] },
  { args: ['user', 'get', 'p1', '-w', 'table'] },
  { args: ['user', 'get', 'p1', '-w', 'protobuf'], protobuf: pb(AuthUserGetResponse) },
  { args: ['user', 'get', 'nosuch'] },
  { args: ['user', 'get'] },
  { args: ['user', 'list'] },
  { args: ['user', 'list', '-w', 'json'] },
  { args: ['user', 'list', '-w', 'fields'] },
  { args: ['user', 'list', '-w', 'protobuf'], protobuf: pb(AuthUserListResponse) },
  { args: ['user', 'list', 'x'] },
  { args: ['user', 'revoke-role', 'p1', 'ranges', '-w', 'json'] },
  { args: ['user', 'revoke-role', 'p1', 'ranges'] },
  { args: ['user', 'revoke-role', 'p1'] },
  { args: ['user', 'delete', 'p2', '-w', 'fields'] },
  { args: ['user', 'delete', 'p3'] },
  { args: ['user', 'delete'] },
  { args: ['role', 'delete', 'ranges'] },
  { args: ['auth', 'enable', 'x'] },
  { args: ['auth', 'disable', 'x'] },
  { args: ['auth', 'disable'] },
  { args: ['user', 'get', 'p1', '--user', 'p1:newer'] }, // auth off: the failed Authenticate is only logged
];

/** The rest of the management script, and users at work, once auth is on. */
const afterEnable: Step[] = [
  { args: ['auth', 'enable'] },
  { args: ['auth', 'enable', ...root] },
  { args: ['user', 'list'] },
  { args: ['user', 'list', '--user', 'root:wrong'] },
  { args: ['user', 'list', '--user', 'nobody:pw'] },
  { args: ['user', 'list', ...root] },
  { args: ['role', 'list', ...root] },
  { args: ['user', 'list', '--user', 'alice:alicepw'] },
  { args: ['user', 'list', '--user', 'alice', '--password', 'alicepw'] },
  { args: ['user', 'list', '--user', 'alice'], stdin: 'alicepw\n' },
  { args: ['user', 'list'], env: { ETCDCTL_USER: 'root', ETCDCTL_PASSWORD: 'rootpw' } },
  ...['root', 'alice', 'dave', 'nosuch'].map((u): Step => ({ args: ['user', 'get', u, ...root] })),
  { args: ['user', 'get', 'alice', '--detail', ...root] },
  { args: ['user', 'get', 'alice', '--user', 'alice:alicepw'] },
  { args: ['user', 'get', 'bob', '--user', 'alice:alicepw'] },
  ...['reader', 'writer', 'rw', 'root', 'nosuch'].map((r): Step => ({ args: ['role', 'get', r, ...root] })),
  { args: ['role', 'get', 'reader', '--user', 'alice:alicepw'] },
  { args: ['role', 'get', 'writer', '--user', 'alice:alicepw'] },
  { args: ['user', 'delete', 'root', ...root] },
  { args: ['user', 'revoke-role', 'root', 'root', ...root] },
  { args: ['role', 'delete', 'root', ...root] },
  { args: ['user', 'revoke-role', 'dave', 'rw', ...root] },
  { args: ['user', 'revoke-role', 'nosuch', 'rw', ...root] },
  { args: ['role', 'revoke-permission', 'reader', 'q', ...root] },
  { args: ['role', 'revoke-permission', 'nosuch', 'q', ...root] },
  { args: ['user', 'add', 'eve:evepw', '--interactive=false', '--user', 'alice:alicepw'] },
  { args: ['user', 'add', ':x', '--interactive=false', ...root] },
  { args: ['role', 'add', 'tmp', ...root] },
  { args: ['user', 'add', 'eve:evepw', '--interactive=false', ...root] },
  { args: ['user', 'grant-role', 'eve', 'tmp', ...root] },
  { args: ['role', 'delete', 'tmp', ...root] },
  { args: ['user', 'get', 'eve', ...root] },
  { args: ['user', 'passwd', 'eve', '--interactive=false', ...root], stdin: 'newpw\n' },
  { args: ['get', 'k', '--user', 'eve:evepw'] },
  { args: ['get', 'k', '--user', 'eve:newpw'] },
  { args: ['user', 'delete', 'eve', ...root] },
  { args: ['user', 'delete', 'eve', ...root] },
  { args: ['put', 'k', 'v', '--user', 'bob:bobpw'] },
  { args: ['get', 'k', '--user', 'bob:bobpw'] },
  { args: ['get', 'k', '--user', 'alice:alicepw'] },
  { args: ['put', 'p/x', 'v', '--user', 'alice:alicepw'] },
  { args: ['get', 'k'] },
  { args: ['auth', 'disable', '--user', 'alice:alicepw'] },
  { args: ['auth', 'disable', ...root] },
  { args: ['auth', 'disable'] },
  { args: ['user', 'list'] },
];

for (const target of selectedTargets()) {
  test(`user, role and auth against ${target}: concordctl prints what etcdctl prints`, async () => {
    const sides = await startSides(target, ['--bcrypt-cost', '4']);
    try {
      const steps = [...beforeEnable, ...formatsAndArgs, ...afterEnable];
      const mismatches = await differ(sides, steps);
      assert.deepEqual(mismatches, [], `${mismatches.length} of ${steps.length} steps differ:\n${mismatches.join('\n')}`);
    } finally {
      await stopSides(sides);
    }
  });
}
