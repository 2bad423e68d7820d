// Quota test, against each selected target (real etcd pins the oracle behaviour):
// with a small --quota-backend-bytes, writes fill the store until etcd's NOSPACE alarm;
// then writes that grow the store are refused with "etcdserver: mvcc: database space exceeded",
// reads, read-only txns and deletes still work, the alarm is listed (and survives a restart),
// /health says false; compact + defrag + `alarm disarm` restores writes.
// (etcd 3.4 takes small quotas as given; its bbolt file overshoots the quota a little before
// the alarm, e.g. 2 MiB quota -> ~3 MB file after ~120 puts of 16 KiB.)

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, httpGet, b, mk, type Server } from './harness.js';
import { AlarmRequest_AlarmAction, AlarmType } from '../src/proto/gen/etcdserverpb/rpc.js';

const QUOTA = 2 * 1024 * 1024;
const VALUE = Buffer.alloc(16 * 1024, 0x61);
const NOSPACE = { code: 8, message: 'etcdserver: mvcc: database space exceeded' };

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

describe('quota: NOSPACE alarm and recovery', () => {
  for (const target of selectedTargets()) {
    test(`${target}: filling past --quota-backend-bytes raises NOSPACE; reads and deletes work; compact+defrag+disarm restores writes`, async () => {
      const s = await startServer({ target, extraArgs: ['--quota-backend-bytes', String(QUOTA)] });
      servers.push(s);
      let c = s.client();
      try {
        // Fill: overwrite 4 keys so that history, not live data, takes the space.
        const bound = Math.ceil((QUOTA * 8) / VALUE.length);
        let i = 0;
        let refused: { code: number; message: string } | null = null;
        for (; i < bound; i++) {
          const r = await c.op('put', { key: b(`q/${i % 4}`), value: VALUE });
          if (!r.ok) { refused = { code: r.code, message: r.message }; break; }
        }
        assert.ok(refused, `no NOSPACE after ${bound} puts of ${VALUE.length} bytes with quota ${QUOTA}`);
        assert.deepStrictEqual(refused, NOSPACE);
        const acked = i; // puts 0..i-1 were acknowledged

        // The alarm is raised and listed.
        const memberId = (await c.status()).header!.memberId;
        const alarms = await c.alarm({ action: AlarmRequest_AlarmAction.GET, memberID: 0n, alarm: AlarmType.NONE });
        assert.deepStrictEqual(alarms.alarms.map((a) => ({ memberID: a.memberID, alarm: a.alarm })), [{ memberID: memberId, alarm: AlarmType.NOSPACE }]);
        const list = await s.etcdctl(['alarm', 'list']);
        assert.equal(list.code, 0);
        assert.equal(list.stdout, `memberID:${memberId} alarm:NOSPACE \n`);
        const st = await c.status();
        assert.deepStrictEqual(st.errors, [`memberID:${memberId} alarm:NOSPACE `]);
        const health = await httpGet(`${s.endpoint}/health`);
        assert.equal(health.status, 503);
        assert.equal(JSON.parse(health.body).health, 'false');

        // Writes that grow the store are refused, even tiny ones.
        assert.deepStrictEqual(pick(await c.op('put', { key: b('small'), value: b('x') })), NOSPACE);
        assert.deepStrictEqual(pick(await c.op('txn', { success: [mk.opPut({ key: b('small'), value: b('x') })] })), NOSPACE);

        // Reads still work and see the acknowledged data.
        const last = (acked - 1) % 4;
        const got = await c.range({ key: b(`q/${last}`) });
        assert.equal(got.kvs.length, 1);
        assert.ok(Buffer.from(got.kvs[0]!.value).equals(VALUE));
        const ser = await c.range({ key: b('q/'), rangeEnd: b('q0'), serializable: true, keysOnly: true });
        assert.equal(ser.count, 4);
        const ro = await c.op('txn', { success: [mk.opRange({ key: b('q/0') })] });
        assert.ok(ro.ok, 'read-only txn works under NOSPACE');
        const eget = await s.etcdctl(['get', 'q/', '--prefix', '--keys-only']);
        assert.equal(eget.stdout, 'q/0\n\nq/1\n\nq/2\n\nq/3\n\n');

        // Deletes work.
        const del = await c.deleteRange({ key: b('q/3') });
        assert.equal(del.deleted, 1);

        // The alarm is persisted: it survives a restart.
        c.close();
        await s.stop();
        await s.restart();
        c = s.client();
        assert.equal((await s.etcdctl(['alarm', 'list'])).stdout, `memberID:${memberId} alarm:NOSPACE \n`);
        assert.deepStrictEqual(pick(await c.op('put', { key: b('small'), value: b('x') })), NOSPACE);

        // Compact + defrag frees the space, but writes stay refused until the alarm is disarmed.
        const rev = (await c.status()).header!.revision;
        await c.compact({ revision: rev, physical: true });
        const ctlDefrag = await s.etcdctl(['defrag']);
        assert.equal(ctlDefrag.code, 0, ctlDefrag.stderr);
        const after = await c.status();
        assert.ok(after.dbSize < QUOTA, `db size ${after.dbSize} below quota ${QUOTA} after compact+defrag`);
        assert.deepStrictEqual(pick(await c.op('put', { key: b('small'), value: b('x') })), NOSPACE);
        const disarm = await s.etcdctl(['alarm', 'disarm']);
        assert.equal(disarm.code, 0);
        assert.equal(disarm.stdout, `memberID:${memberId} alarm:NOSPACE \n`);

        // Writes work again; no alarm; healthy.
        const ok = await c.op('put', { key: b('small'), value: b('x') });
        assert.ok(ok.ok, `put after disarm: ${JSON.stringify(pick(ok))}`);
        assert.equal((await s.etcdctl(['alarm', 'list'])).stdout, '');
        assert.deepStrictEqual((await c.status()).errors, []);
        const h2 = await httpGet(`${s.endpoint}/health`);
        assert.equal(h2.status, 200);
        assert.equal(JSON.parse(h2.body).health, 'true');
      } finally {
        c.close();
        await s.destroy();
      }
    });
  }
});

function pick(o: { ok: boolean; code?: number; message?: string }): { code?: number; message?: string } | 'ok' {
  return o.ok ? 'ok' : { code: o.code, message: o.message };
}
