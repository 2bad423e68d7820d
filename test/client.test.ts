// The client library (src/client, published as `concord/client`) against real etcd 3.4 and
// Concord, each on a fresh member. Every assertion runs against both targets; the kv scenario's
// results are also compared between them field by field. Lease, lock and election need the
// Lease service: against a server that answers Unimplemented for it they are skipped with that
// reason (never faked). Auth runs on its own member (it changes the server for good).
//
// Run one side only with CONCORD_TESTS_ETCD_ONLY=1 / CONCORD_TESTS_CONCORD_ONLY=1 (harness.ts).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client, Compare, Op, EtcdErrors, EtcdError, WatchCompactedError, LeaseLostError, DeadlineExceededError,
  NoAvailableEndpointError, isUnimplemented, Event_EventType, type WatchBatch, type Watcher,
} from '../src/client/index.js';
import { startServer, selectedTargets, freePort, normalize, type Server, type TargetName } from './harness.js';

const kvResults = new Map<TargetName, unknown>();

/** Next n events of a watcher (batches may hold several). */
async function takeEvents(w: Watcher, n: number): Promise<WatchBatch['events']> {
  const out: WatchBatch['events'] = [];
  const it = w[Symbol.asyncIterator]();
  while (out.length < n) {
    const r = await it.next();
    assert.ok(!r.done, 'watch ended early');
    out.push(...r.value.events);
  }
  return out;
}

const str = (b: Buffer | undefined) => b?.toString();

for (const target of selectedTargets()) {
  describe(`client library against ${target}`, () => {
    let server: Server;
    let client: Client;
    /** Why lease-based tests are skipped on this target, or undefined when Lease answers. */
    let noLease: string | undefined;

    before(async () => {
      server = await startServer({ target });
      client = new Client({ endpoints: [server.endpoint] });
      try {
        const { ID } = await client.lease.grant(5);
        await client.lease.revoke(ID);
      } catch (e) {
        if (!isUnimplemented(e)) throw e;
        noLease = `${target} answers Unimplemented for etcdserverpb.Lease (${(e as Error).message})`;
      }
    });
    after(async () => {
      client?.close();
      await server?.destroy();
    });

    test('kv: get/put/delete with every option, txn builder, the same results as the other target', async () => {
      const r: Record<string, unknown> = {};
      for (const [k, v] of [['a', '1'], ['b', '22'], ['b/1', '3'], ['b/2', '4'], ['c', '5']] as const) await client.kv.put(k, v);
      await client.kv.put('b', '2');
      r.one = await client.kv.get('b');
      r.prefix = await client.kv.get('b', { prefix: true });
      r.fromKey = await client.kv.get('b/', { fromKey: true });
      r.range = await client.kv.get('a', { rangeEnd: 'c' });
      r.limit = await client.kv.get('', { prefix: true, limit: 2 });
      r.atRev = await client.kv.get('b', { revision: 2 });
      r.sorted = await client.kv.get('', { prefix: true, sort: { target: 'value', order: 'descend' } });
      r.byVersion = await client.kv.get('', { prefix: true, sort: { target: 'version', order: 'ascend' } });
      r.serializable = await client.kv.get('a', { serializable: true });
      r.keysOnly = await client.kv.get('b', { prefix: true, keysOnly: true });
      r.countOnly = await client.kv.get('', { prefix: true, countOnly: true });
      r.modFilter = await client.kv.get('', { prefix: true, minModRevision: 3, maxModRevision: 5 });
      r.createFilter = await client.kv.get('', { prefix: true, minCreateRevision: 2, maxCreateRevision: 3 });
      r.putPrev = await client.kv.put('a', '10', { prevKv: true });
      r.ignoreValue = await client.kv.put('a', '', { ignoreValue: true, prevKv: true });
      r.afterIgnore = await client.kv.get('a');
      r.delPrev = await client.kv.delete('b', { prefix: true, prevKv: true });
      r.delFromKey = await client.kv.delete('c', { fromKey: true });
      r.txnThen = await client.kv.txn()
        .if(Compare.value('a', '=', '10'), Compare.version('a', '>', 1), Compare.createRevision('a', '=', 2), Compare.modRevision('a', '<', 100))
        .then(Op.put('t', 'yes'), Op.get('a'), Op.delete('nothing'), Op.txn(client.kv.txn().then(Op.get('t'))))
        .else(Op.put('t', 'no'))
        .commit();
      r.txnElse = await client.kv.txn().if(Compare.value('a', '!=', '10')).then(Op.put('t', 'yes')).else(Op.get('t'), Op.put('u', 'x')).commit();
      r.txnRange = await client.kv.txn().if(Compare.version('', '>', 0, { prefix: true })).then(Op.get('', { prefix: true, countOnly: true })).commit();
      r.final = await client.kv.get('', { fromKey: true });
      const all = normalize(r) as Record<string, { kvs?: { key: string }[] }>;
      assert.deepEqual(all.prefix!.kvs!.map((kv) => kv.key), ['b', 'b/1', 'b/2']);
      assert.deepEqual(all.final!.kvs!.map((kv) => kv.key), ['a', 't', 'u']);
      assert.equal((r.txnThen as { succeeded: boolean }).succeeded, true);
      assert.equal((r.txnElse as { succeeded: boolean }).succeeded, false);
      kvResults.set(target, all);
    });

    test('kv: a txn builder refuses parts out of order', () => {
      assert.throws(() => client.kv.txn().then(Op.get('a')).if(Compare.value('a', '=', '1')), /txn: if after then/);
      assert.throws(() => client.kv.get('a', { prefix: true, fromKey: true }), /mutually exclusive/);
    });

    test('kv: iterate pages through a range at one revision, unmoved by writes during it', async () => {
      for (let i = 0; i < 23; i++) await client.kv.put(`it/${String(i).padStart(2, '0')}`, `v${i}`);
      const seen: string[] = [];
      for await (const kv of client.kv.iterate('it/', { prefix: true, pageSize: 5 })) {
        seen.push(kv.key.toString());
        if (seen.length === 3) { await client.kv.put('it/99', 'late'); await client.kv.delete('it/20'); }
      }
      assert.deepEqual(seen, Array.from({ length: 23 }, (_, i) => `it/${String(i).padStart(2, '0')}`));
      const single: string[] = [];
      for await (const kv of client.kv.iterate('it/05')) single.push(kv.value.toString());
      assert.deepEqual(single, ['v5']);
    });

    test("errors: etcd's conditions arrive as their own classes, with etcd's code and message", async () => {
      await assert.rejects(client.kv.put('', 'x'), (e) => e instanceof EtcdErrors.EmptyKey && e instanceof EtcdError && e.code === 3 && e.message === 'etcdserver: key is not provided');
      await assert.rejects(client.kv.get('a', { revision: 1_000_000 }), EtcdErrors.FutureRev);
      await assert.rejects(client.kv.txn().then(Op.put('d', '1'), Op.put('d', '2')).commit(), EtcdErrors.DuplicateKey);
      const { header } = await client.kv.put('cmp', '1');
      await client.kv.put('cmp', '2');
      await client.kv.compact(header!.revision);
      await assert.rejects(client.kv.get('cmp', { revision: header!.revision - 1 }), (e) => e instanceof EtcdErrors.Compacted && !(e instanceof EtcdErrors.FutureRev));
    });

    test('cancellation and deadlines: an aborted call rejects with the signal reason', async () => {
      const ac = new AbortController();
      ac.abort(new Error('stop it'));
      await assert.rejects(client.kv.get('a', { signal: ac.signal }), /stop it/);
      await assert.rejects(client.kv.get('a', { timeoutMs: 0 }), DeadlineExceededError);
    });

    test('transaction(fn): concurrent increments all count (conflicts retried), reads see one snapshot', async () => {
      await client.kv.put('stm/n', '0');
      await Promise.all(Array.from({ length: 8 }, () => client.transaction(async (tx) => {
        const n = Number((await tx.get('stm/n'))?.toString() ?? '0');
        tx.put('stm/n', String(n + 1));
        tx.put(`stm/log/${n}`, 'x');
      }, { maxAttempts: 50 })));
      assert.equal(str((await client.kv.get('stm/n')).kvs[0]?.value), '8');
      assert.equal((await client.kv.get('stm/log/', { prefix: true, countOnly: true })).count, 8);
      const moved = await client.transaction(async (tx) => {
        const a = await tx.get('stm/n');
        tx.delete('stm/n');
        return [a?.toString(), await tx.get('stm/n')];
      });
      assert.deepEqual(moved, ['8', undefined]);
      assert.equal((await client.kv.get('stm/n')).count, 0);
    });

    test('failover: a dead endpoint first, the live one answers; none alive is NoAvailableEndpointError', async () => {
      const dead = `http://127.0.0.1:${await freePort()}`;
      const c = new Client({ endpoints: [dead, server.endpoint], dialTimeoutMs: 500 });
      try {
        await c.kv.put('fo', 'x');
        assert.equal(str((await c.kv.get('fo')).kvs[0]?.value), 'x');
        assert.equal(c.connection.active.url, server.endpoint);
      } finally { c.close(); }
      const none = new Client({ endpoints: [dead], dialTimeoutMs: 200 });
      try {
        await assert.rejects(none.kv.get('fo'), NoAvailableEndpointError);
      } finally { none.close(); }
    });

    test('watch: events with prev_kv, filters, and a compacted start as WatchCompactedError', async () => {
      const w = client.watch.watch('w/', { prefix: true, prevKv: true });
      const noPut = client.watch.watch('w/', { prefix: true, filters: ['noPut'] });
      await Promise.all([w.created, noPut.created]);
      await client.kv.put('w/a', '1');
      await client.kv.put('w/a', '2');
      await client.kv.delete('w/a');
      const ev = await takeEvents(w, 3);
      assert.deepEqual(ev.map((e) => [e.type, str(e.kv!.key), str(e.kv!.value), str(e.prevKv?.value)]),
        [[Event_EventType.PUT, 'w/a', '1', undefined], [Event_EventType.PUT, 'w/a', '2', '1'], [Event_EventType.DELETE, 'w/a', '', '2']]);
      const dels = await takeEvents(noPut, 1);
      assert.equal(dels[0]!.type, Event_EventType.DELETE);
      w.close();
      noPut.close();
      const { header } = await client.kv.put('w/b', '1');
      await client.kv.put('w/b', '2');
      await client.kv.compact(header!.revision + 1);
      const old = client.watch.watch('w/b', { startRevision: header!.revision });
      await assert.rejects(old[Symbol.asyncIterator]().next(), (e) => e instanceof WatchCompactedError && e.compactRevision === header!.revision + 1);
    });

    test('watch: resumes across a server restart with no event lost and none repeated', async () => {
      const w = client.watch.watch('wr/', { prefix: true });
      await w.created;
      const revs: number[] = [];
      for (let i = 0; i < 3; i++) revs.push((await client.kv.put(`wr/${i}`, `${i}`)).header!.revision);
      const first = await takeEvents(w, 2); // one event still undelivered when the server goes
      await server.stop();
      await server.restart();
      for (let i = 3; i < 6; i++) revs.push((await client.kv.put(`wr/${i}`, `${i}`)).header!.revision);
      const rest = await takeEvents(w, 4);
      revs.push((await client.kv.put('wr/last', 'x')).header!.revision);
      const last = await takeEvents(w, 1);
      const got = [...first, ...rest, ...last].map((e) => e.kv!.modRevision);
      assert.deepEqual(got, revs);
      assert.deepEqual([...first, ...rest, ...last].map((e) => str(e.kv!.key)), ['wr/0', 'wr/1', 'wr/2', 'wr/3', 'wr/4', 'wr/5', 'wr/last']);
      w.close();
    });

    test('watch: an abort signal ends the iterator with its reason', async () => {
      const ac = new AbortController();
      const w = client.watch.watch('wa', { signal: ac.signal });
      await w.created;
      const next = w[Symbol.asyncIterator]().next();
      ac.abort(new Error('done watching'));
      await assert.rejects(next, /done watching/);
    });

    test('cluster and maintenance: members, status, hashes, alarms, defragment, snapshot stream', async () => {
      const { members } = await client.cluster.memberList();
      assert.equal(members.length, 1);
      assert.equal(members[0]!.name, 't0');
      assert.deepEqual(members[0]!.clientURLs, [server.endpoint]);
      const st = await client.maintenance.status({ endpoint: server.endpoint });
      assert.equal(st.leader, members[0]!.ID);
      assert.match(st.version, /^3\.4\./);
      const h1 = await client.maintenance.hashKV(0);
      const h2 = await client.maintenance.hashKV(0);
      assert.equal(h1.hash, h2.hash);
      assert.deepEqual((await client.maintenance.alarms()).alarms, []);
      await client.maintenance.defragment();
      let bytes = 0;
      for await (const chunk of await client.maintenance.snapshot()) bytes += chunk.length;
      assert.ok(bytes > 0, 'snapshot streamed nothing');
    });

    test('cluster: removing an unknown member is MemberNotFound', async (t) => {
      try {
        await client.cluster.memberRemove(12345n);
        assert.fail('removed a member that does not exist');
      } catch (e) {
        if (isUnimplemented(e)) { t.skip(`${target} answers Unimplemented for MemberRemove (${(e as Error).message})`); return; }
        assert.ok(e instanceof EtcdErrors.MemberNotFound, String(e));
      }
    });

    test('lease: grant, time-to-live with keys, list, keep-alive that renews, loss reported on revoke', async (t) => {
      if (noLease) { t.skip(noLease); return; }
      const { ID: id } = await client.lease.grant(2);
      await client.kv.put('l/k', 'v', { lease: id });
      const ttl = await client.lease.timeToLive(id, { keys: true });
      assert.equal(ttl.grantedTTL, 2);
      assert.deepEqual(ttl.keys.map(str), ['l/k']);
      assert.ok((await client.lease.leases()).leases.some((l) => l.ID === id));
      assert.equal((await client.lease.keepAliveOnce(id)).TTL, 2);
      const ka = client.lease.keepAlive(id, 2);
      await new Promise((r) => setTimeout(r, 3500)); // longer than the TTL: only renewals keep it
      assert.equal(str((await client.kv.get('l/k')).kvs[0]?.value), 'v');
      const other = new Client({ endpoints: [server.endpoint] });
      try { await other.lease.revoke(id); } finally { other.close(); }
      const lost = await ka.lost;
      assert.ok(lost instanceof LeaseLostError && lost.leaseId === id);
      assert.equal((await client.lease.timeToLive(id)).TTL, -1);
      await assert.rejects(client.lease.revoke(id), EtcdErrors.LeaseNotFound);
    });

    test('lock: exclusive, fencing tokens increase, a waiter gets it after unlock, deadline while waiting', async (t) => {
      if (noLease) { t.skip(noLease); return; }
      const a = await client.lock.lock('mylock', { ttl: 10 });
      assert.match(a.key.toString(), /^mylock\/[0-9a-f]+$/);
      await assert.rejects(client.lock.lock('mylock', { ttl: 10, timeoutMs: 300 }), DeadlineExceededError);
      const waiting = client.lock.lock('mylock', { ttl: 10 });
      await client.kv.put('unrelated', 'x');
      await a.unlock();
      const b = await waiting;
      assert.ok(b.fencingToken > a.fencingToken, `${b.fencingToken} > ${a.fencingToken}`);
      const { kvs } = await client.kv.get(b.key);
      assert.equal(kvs[0]!.createRevision, b.fencingToken);
      await b.unlock();
      assert.equal((await client.kv.get('mylock/', { prefix: true, countOnly: true })).count, 0);
    });

    test('election: campaign, leader, proclaim, observe, resign', async (t) => {
      if (noLease) { t.skip(noLease); return; }
      const lead = await client.election.campaign('elec', 'one', { ttl: 10 });
      assert.equal(str((await client.election.leader('elec'))?.value), 'one');
      const obs = await client.election.observe('elec');
      assert.equal(str((await obs.next()).value.kv?.value), 'one');
      await lead.proclaim('two');
      assert.equal(str((await obs.next()).value.kv?.value), 'two');
      const second = client.election.campaign('elec', 'three', { ttl: 10 });
      await lead.resign();
      const next = await second;
      assert.ok(next.fencingToken > lead.fencingToken);
      assert.equal(str((await obs.next()).value.kv?.value), 'three');
      await obs.return!();
      await next.resign();
    });
  });
}

test('kv: Concord and etcd give the client the same results', (t) => {
  if (!kvResults.has('etcd') || !kvResults.has('concord')) { t.skip('needs both targets'); return; }
  assert.deepEqual(kvResults.get('concord'), kvResults.get('etcd'));
});

for (const target of selectedTargets()) {
  test(`auth against ${target}: user/password, and a new token when the old one expires`, async (t) => {
    const server = await startServer({ target, extraArgs: ['--auth-token', 'simple', '--auth-token-ttl', '1'] });
    const admin = new Client({ endpoints: [server.endpoint] });
    try {
      try {
        await admin.auth.userAdd('root', 'rootpw');
      } catch (e) {
        if (!isUnimplemented(e)) throw e;
        t.skip(`${target} answers Unimplemented for etcdserverpb.Auth (${(e as Error).message})`);
        return;
      }
      await admin.auth.roleAdd('root');
      await admin.auth.userGrantRole('root', 'root');
      await admin.auth.enable();
      await assert.rejects(admin.kv.put('x', 'y'), EtcdErrors.UserEmpty);
      const c = new Client({ endpoints: [server.endpoint], auth: { username: 'root', password: 'rootpw' } });
      try {
        await c.kv.put('x', 'y');
        await new Promise((r) => setTimeout(r, 2500)); // past the token's TTL: the server forgets it
        assert.equal(str((await c.kv.get('x')).kvs[0]?.value), 'y');
      } finally { c.close(); }
      // A per-member call to a named endpoint authenticates there first.
      const perMember = new Client({ endpoints: [server.endpoint], auth: { username: 'root', password: 'rootpw' } });
      try {
        assert.match((await perMember.maintenance.status({ endpoint: server.endpoint })).version, /^3\.4\./);
        await perMember.maintenance.hashKV(0, { endpoint: server.endpoint });
      } finally { perMember.close(); }
      const bad = new Client({ endpoints: [server.endpoint], auth: { username: 'root', password: 'nope' } });
      try {
        await assert.rejects(bad.kv.get('x'), EtcdErrors.AuthFailed);
      } finally { bad.close(); }
    } finally {
      admin.close();
      await server.destroy();
    }
  });
}

for (const target of selectedTargets()) {
  test(`auth management against ${target}: users, roles, permissions; a password asked once; credentials while auth is off`, async () => {
    const server = await startServer({ target, extraArgs: ['--bcrypt-cost', '4'] });
    const admin = new Client({ endpoints: [server.endpoint] });
    try {
      await admin.auth.userAdd('alice', 'a');
      await admin.auth.roleAdd('reader');
      await admin.auth.roleGrantPermission('reader', 'k', 'read', { prefix: true });
      await admin.auth.userGrantRole('alice', 'reader');
      assert.deepEqual((await admin.auth.userGet('alice')).roles, ['reader']);
      assert.ok((await admin.auth.userList()).users.includes('alice'));
      assert.ok((await admin.auth.roleList()).roles.includes('reader'));
      const perm = (await admin.auth.roleGet('reader')).perm;
      assert.deepEqual(perm.map((p) => [p.permType, str(p.key), str(p.rangeEnd)]), [[0, 'k', 'l']]);
      await admin.auth.roleRevokePermission('reader', 'k', { prefix: true });
      assert.deepEqual((await admin.auth.roleGet('reader')).perm, []);
      await admin.auth.userChangePassword('alice', 'b');
      await admin.auth.userRevokeRole('alice', 'reader');
      assert.deepEqual((await admin.auth.userGet('alice')).roles, []);
      await admin.auth.roleDelete('reader');
      await admin.auth.userDelete('alice');
      await assert.rejects(admin.auth.userGet('alice'), EtcdErrors.UserNotFound);

      // Auth off: the server's "authentication is not enabled" is reported, and calls go on without a token.
      let asked = 0;
      const ignored: unknown[] = [];
      const ask = async () => { asked++; return 'rootpw'; };
      const early = new Client({ endpoints: [server.endpoint], auth: { username: 'root', password: ask }, onIgnoredError: (e) => ignored.push(e) });
      try {
        await early.kv.put('x', '1');
        assert.equal(ignored.length, 1);
        assert.ok(ignored[0] instanceof EtcdErrors.AuthNotEnabled);
      } finally { early.close(); }

      await admin.auth.userAdd('root', 'rootpw');
      await admin.auth.roleAdd('root');
      await admin.auth.userGrantRole('root', 'root');
      await admin.auth.enable();
      const prompted = new Client({ endpoints: [server.endpoint], auth: { username: 'root', password: ask } });
      try {
        await prompted.kv.put('x', '2');
        assert.equal(str((await prompted.kv.get('x')).kvs[0]?.value), '2');
        assert.equal(asked, 2, 'each client asks for the password once');
      } finally { prompted.close(); }
      // An empty password means no login (a user known by its certificate): the server wants a user.
      const noLogin = new Client({ endpoints: [server.endpoint], auth: { username: 'root', password: '' } });
      try {
        await assert.rejects(noLogin.kv.get('x'), EtcdErrors.UserEmpty);
      } finally { noLogin.close(); }
    } finally {
      admin.close();
      await server.destroy();
    }
  });
}
