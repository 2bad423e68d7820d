// The JSON gateway (/v3/, /v3beta/) against real etcd 3.4's: the same curl-shaped requests
// (POST with a JSON body, node:http) to both, compared status, JSON body (ids, sizes and hashes
// normalized), the headers grpc-gateway sets and its trailer on service errors. Watch is a
// chunked stream of {"result":...} lines; snapshot a stream of blobs ending in the sha256.
// Malformed JSON is compared by status and code only (Go's and V8's parser messages differ).

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, selectedTargets, targetsWithWorkerThreadApi, type Server, type TargetName } from './harness.js';
import { b64, normalize, post, streamLines, type Answer } from './gateway-http.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** [path, body] of the unary cases, run in order on each target. */
const cases: Array<[string, string | undefined]> = [
  ['/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('bar') })],
  ['/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('baz'), prev_kv: true })],
  ['/v3/kv/put', JSON.stringify({ key: b64('fop'), value: b64('1'), lease: '0' })],
  ['/v3beta/kv/put', JSON.stringify({ key: b64('fz'), value: b64('') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('foo') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g'), sort_order: 'DESCEND', sort_target: 'KEY' })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), rangeEnd: b64('g'), limit: 1 })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g'), count_only: true })],
  ['/v3/kv/range', JSON.stringify({ key: b64('f'), range_end: b64('g'), keys_only: true, revision: '2' })],
  ['/v3/kv/range', JSON.stringify({ key: b64('foo'), serializable: true, unknown_field: 1 })],
  ['/v3/kv/range', JSON.stringify({ key: b64('nope') })],
  ['/v3/kv/range', JSON.stringify({ key: b64('foo'), revision: '99' })],
  ['/v3/kv/range', '{}'],
  ['/v3/kv/range', ''],
  ['/v3/kv/range', JSON.stringify({ key: '!!' })],
  ['/v3/kv/range', JSON.stringify({ key: 'Zm9v=' })],
  ['/v3/kv/txn', JSON.stringify({
    compare: [{ key: b64('foo'), result: 'EQUAL', target: 'VALUE', value: b64('baz') }],
    success: [{ request_put: { key: b64('t'), value: b64('1') } }, { request_range: { key: b64('foo') } }],
    failure: [{ request_delete_range: { key: b64('foo') } }],
  })],
  ['/v3/kv/txn', JSON.stringify({
    compare: [{ key: b64('foo'), result: 'GREATER', target: 'MOD', mod_revision: '100' }],
    failure: [{ request_range: { key: b64('t'), count_only: true } }],
  })],
  ['/v3/kv/txn', JSON.stringify({ success: [{ request_put: { key: b64('x'), value: b64('1') } }, { request_put: { key: b64('x'), value: b64('2') } }] })],
  ['/v3/kv/deleterange', JSON.stringify({ key: b64('fop'), prev_kv: true })],
  ['/v3/kv/deleterange', JSON.stringify({ key: b64('zzz') })],
  ['/v3/kv/compaction', JSON.stringify({ revision: '100' })],
  ['/v3/kv/compaction', JSON.stringify({ revision: '2', physical: true })],
  ['/v3/kv/range', JSON.stringify({ key: b64('foo'), revision: '1' })],
  ['/v3/maintenance/status', '{}'],
  ['/v3/maintenance/alarm', '{}'],
  ['/v3/maintenance/alarm', JSON.stringify({ action: 'GET', alarm: 'NONE' })],
  ['/v3/maintenance/defragment', '{}'],
  ['/v3/maintenance/hash', '{}'],
  ['/v3/cluster/member/list', '{}'],
  // Past etcd's request limit (1.5 MiB) but under gRPC's receive limit (+512 KiB), then past both.
  ['/v3/kv/put', JSON.stringify({ key: b64('big'), value: Buffer.alloc(1800 * 1024, 1).toString('base64') })],
  ['/v3/kv/put', JSON.stringify({ key: b64('big'), value: Buffer.alloc(2500 * 1024, 1).toString('base64') })],
  ['/v3/nope', '{}'],
  ['/v3/kv', '{}'],
];

/** Malformed bodies: compared by status and gRPC code only. */
const malformed: Array<[string, string]> = [
  ['/v3/kv/range', '{bad'],
  ['/v3/kv/range', JSON.stringify({ key: b64('foo'), limit: 'x' })],
  ['/v3/kv/range', '[1]'],
  ['/v3/kv/put', '{"key":'],
  ['/v3/kv/range', '{"key":"Zm9v","x":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}'],
];

interface Transcript { unary: Answer[]; malformed: Answer[]; get: Answer; snapshot: string[]; watch: string[] }

/** Opens a watch over the gateway and collects its first `n` lines while `during` runs. */
function watchLines(endpoint: string, request: unknown, n: number, during: () => Promise<void>): Promise<string[]> {
  return streamLines(`${endpoint}/v3/watch`, JSON.stringify(request), n, during);
}

async function transcript(s: Server): Promise<Transcript> {
  const unary: Answer[] = [];
  for (const [path, body] of cases) unary.push(await post(`${s.endpoint}${path}`, body));
  const bad: Answer[] = [];
  for (const [path, body] of malformed) bad.push(await post(`${s.endpoint}${path}`, body));
  const get = await post(`${s.endpoint}/v3/kv/range`, undefined, 'GET');
  const snap = await post(`${s.endpoint}/v3/maintenance/snapshot`, '{}');
  assert.equal(snap.status, 200);
  const watch = await watchLines(s.endpoint, { create_request: { key: b64('w'), prev_kv: true } }, 3, async () => {
    await post(`${s.endpoint}/v3/kv/put`, JSON.stringify({ key: b64('w'), value: b64('1') }));
    await post(`${s.endpoint}/v3/kv/put`, JSON.stringify({ key: b64('w'), value: b64('2') }));
  });
  return { unary, malformed: bad, get, snapshot: snap.body.split('\n'), watch };
}

const picked = (a: Answer) => ({
  status: a.status,
  body: a.body.startsWith('{') ? normalize(JSON.parse(a.body)) : a.body,
  contentType: a.headers['content-type'],
  grpcMetadata: a.headers['grpc-metadata-content-type'],
  cors: a.headers['access-control-allow-origin'],
  trailer: a.trailers['grpc-trailer-content-type'],
});

describe('JSON gateway', () => {
  const targets = selectedTargets();
  // Concord twice: the worker-thread API mode relays HTTP/1.1 to the main thread's gateway.
  const variants = targetsWithWorkerThreadApi();
  const results = new Map<string, Transcript>();

  test('the same requests on each target', async () => {
    await Promise.all(variants.map(async ({ target, label, env }) => {
      const server = await startServer({ target, ...(env ? { env } : {}) });
      servers.push(server);
      results.set(label, await transcript(server));
    }));
  });

  for (const { label } of variants) {
    test(`${label}: the gateway's JSON (int64 as strings, bytes as base64, defaults omitted, errors)`, () => {
      const t = results.get(label)!;
      const range = JSON.parse(t.unary[4]!.body);
      assert.deepEqual(range.kvs, [{ key: b64('foo'), create_revision: '2', mod_revision: '3', version: '2', value: b64('baz') }]);
      assert.equal(range.count, '1');
      assert.equal(typeof range.header.revision, 'string');
      assert.deepEqual(JSON.parse(t.unary[12]!.body), { error: 'etcdserver: key is not provided', message: 'etcdserver: key is not provided', code: 3 });
      assert.equal(t.unary[12]!.status, 400);
      assert.equal(t.unary[12]!.trailers['grpc-trailer-content-type'], 'application/grpc');
      assert.equal(t.get.status, 405);
      for (const m of t.malformed) assert.deepEqual([m.status, JSON.parse(m.body).code], [400, 3]);
      // Snapshot: {"result":{...}} lines; the last blob is the sha256 of the others.
      const results2 = t.snapshot.filter((l) => l !== '').map((l) => JSON.parse(l).result);
      const blobs = results2.map((r) => Buffer.from(r.blob, 'base64'));
      assert.ok(blobs.length >= 2);
      assert.equal(results2.at(-1)!.remaining_bytes, undefined);
      assert.deepEqual(createHash('sha256').update(Buffer.concat(blobs.slice(0, -1))).digest(), blobs.at(-1));
      // Watch: created, then two events with prev_kv on the second.
      const [created, ev1, ev2] = t.watch.map((l) => JSON.parse(l).result);
      assert.equal(created.created, true);
      assert.equal(ev1.events[0].kv.value, b64('1'));
      assert.equal(ev2.events[0].prev_kv.value, b64('1'));
    });
  }

  for (const { label } of targets.includes('etcd') ? variants.filter((v) => v.target === 'concord') : []) {
    test(`${label}: unary answers equal etcd's (status, JSON body, grpc-gateway headers and trailer)`, () => {
      const e = results.get('etcd')!;
      const c = results.get(label)!;
      cases.forEach(([path, body], i) => {
        assert.deepEqual(picked(c.unary[i]!), picked(e.unary[i]!), `POST ${path} ${body!.slice(0, 200)}`);
      });
      assert.deepEqual(picked(c.get), picked(e.get), 'GET /v3/kv/range');
    });

    test(`${label}: malformed JSON: same status and gRPC code as etcd`, () => {
      const e = results.get('etcd')!;
      const c = results.get(label)!;
      malformed.forEach(([path, body], i) => {
        const pick = (a: Answer) => [a.status, JSON.parse(a.body).code, a.headers['content-type']];
        assert.deepEqual(pick(c.malformed[i]!), pick(e.malformed[i]!), `POST ${path} ${body.slice(0, 100)}`);
      });
    });

    test(`${label}: watch and snapshot streams have etcd's shape`, () => {
      const e = results.get('etcd')!;
      const c = results.get(label)!;
      assert.deepEqual(c.watch.map((l) => normalize(JSON.parse(l))), e.watch.map((l) => normalize(JSON.parse(l))));
      const shape = (lines: string[]) => lines.filter((l) => l !== '').map((l) => Object.keys(JSON.parse(l).result));
      assert.deepEqual(shape(c.snapshot).at(-1), shape(e.snapshot).at(-1));
      assert.deepEqual(shape(c.snapshot)[0], shape(e.snapshot)[0]);
    });
  }

  test('--enable-grpc-gateway=false: /v3/ is not served (etcd\'s client mux answers 404)', async () => {
    const answers = await Promise.all(targets.map(async (target) => {
      const s = await startServer({ target, extraArgs: ['--enable-grpc-gateway=false'] });
      servers.push(s);
      const r = await post(`${s.endpoint}/v3/kv/range`, JSON.stringify({ key: b64('foo') }));
      await s.destroy();
      return { status: r.status, body: r.body, contentType: r.headers['content-type'] };
    }));
    for (const a of answers) assert.deepEqual(a, { status: 404, body: '404 page not found\n', contentType: 'text/plain; charset=utf-8' });
  });

  test('cluster member routes answer as etcd\'s (refusals: bad URLs, unknown member)', async (t) => {
    const live = servers.filter((s) => s.running); // the servers of 'the same requests on each target'
    if (live.length < 2) return t.skip('needs both targets');
    const answers = [];
    for (const s of live) {
      const add = await post(`${s.endpoint}/v3/cluster/member/add`, JSON.stringify({ peerURLs: ['not-a-url'] }));
      const remove = await post(`${s.endpoint}/v3/cluster/member/remove`, JSON.stringify({ ID: '1234' }));
      const promote = await post(`${s.endpoint}/v3/cluster/member/promote`, JSON.stringify({ ID: '1234' }));
      answers.push([add, remove, promote].map((r) => ({ status: r.status, body: r.body })));
    }
    assert.equal(answers[0]![1]!.status, 404);
    assert.deepEqual(answers[1], answers[0]);
  });
});
