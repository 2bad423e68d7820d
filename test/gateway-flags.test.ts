// The client port's HTTP flags against real etcd 3.4 with the same flags: --host-whitelist
// (a cleartext request with another Host is refused with 421 and etcd's text; gRPC is not
// checked), --cors (which Origin gets the CORS headers; OPTIONS answered on any path), and
// --max-concurrent-streams (etcd's e2e v3_curl_maxstream: with the limit taken by gateway
// watches a gateway range waits, and runs once a watch ends; a gRPC client over one
// connection waits the same way). Requests are curl-shaped (node:http, agent off).

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { startServer, selectedTargets, etcdctl, EtcdClient, sleep, type Server, type TargetName } from './harness.js';
import { WatchStreamClient } from './watch-client.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Answer { status: number; body: string; headers: Record<string, string | undefined> }

/** One HTTP/1.1 request with chosen headers; the headers the access controller decides are kept. */
function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', agent: false, timeout: 10_000, headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        const h = res.headers;
        const pick = (n: string) => h[n] as string | undefined;
        resolve({
          status: res.statusCode ?? 0, body,
          headers: {
            'content-type': pick('content-type'), 'x-content-type-options': pick('x-content-type-options'),
            'access-control-allow-origin': pick('access-control-allow-origin'),
            'access-control-allow-methods': pick('access-control-allow-methods'),
            'access-control-allow-headers': pick('access-control-allow-headers'),
          },
        });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Replies whose bodies hold a revision or ids are compared by status and headers only. */
const shape = (a: Answer): unknown => ({ status: a.status, headers: a.headers, body: a.status === 200 && a.body.startsWith('{"header"') ? '<kv reply>' : a.body });

const targets: TargetName[] = selectedTargets();

const accessFlags = ['--host-whitelist=localhost,example.com', '--cors=http://allowed.example:8080'];

/**
 * The access-control requests, labelled, with whether each reaches the JSON gateway; then etcdctl's put (gRPC is never checked against the
 * whitelist: etcdctl's authority is 127.0.0.1:port).
 */
async function accessAnswers(s: Server): Promise<Array<{ gateway: boolean; answer: unknown }>> {
  // etcd answers /version with etcdcluster "not_decided" until its cluster version is set
  // (just after start); compare the two servers once both have decided it.
  for (let i = 0; i < 100 && (await request(`${s.endpoint}/version`, { headers: { host: 'localhost:2379' } })).body.includes('not_decided'); i++) await sleep(100);
  const put = JSON.stringify({ key: b64('foo'), value: b64('bar') });
  const json = { 'content-type': 'application/json' };
  const plain = async (a: Promise<Answer>) => ({ gateway: false, answer: shape(await a) });
  const gateway = async (a: Promise<Answer>) => ({ gateway: true, answer: shape(await a) });
  const answers = [
    await plain(request(`${s.endpoint}/version`, { headers: { host: 'evil.example:2379' } })),
    await plain(request(`${s.endpoint}/health`, { headers: { host: 'evil.example' } })),
    await plain(request(`${s.endpoint}/v3/kv/put`, { method: 'POST', headers: { ...json, host: 'rebind.example:80' }, body: put })),
    await plain(request(`${s.endpoint}/version`, { headers: { host: '[::1]:2379' } })),
    await plain(request(`${s.endpoint}/version`, { headers: { host: 'localhost:2379', origin: 'http://allowed.example:8080' } })),
    await plain(request(`${s.endpoint}/version`, { headers: { host: 'example.com', origin: 'http://other.example:8080' } })),
    await gateway(request(`${s.endpoint}/v3/kv/put`, { method: 'POST', headers: { ...json, host: 'localhost', origin: 'http://allowed.example:8080' }, body: put })),
    await gateway(request(`${s.endpoint}/v3/kv/put`, { method: 'POST', headers: { ...json, host: 'localhost', origin: 'http://other.example:8080' }, body: put })),
    await plain(request(`${s.endpoint}/v3/kv/put`, { method: 'OPTIONS', headers: { host: 'localhost', origin: 'http://allowed.example:8080' } })),
    await plain(request(`${s.endpoint}/anything`, { method: 'OPTIONS', headers: { host: 'localhost' } })),
    await gateway(request(`${s.endpoint}/v3/kv/nope`, { method: 'POST', headers: { ...json, host: 'localhost', origin: 'http://allowed.example:8080' }, body: '{}' })),
  ];
  const ctl = await etcdctl(s.endpoint, ['put', 'k', 'v']);
  return [...answers, { gateway: false, answer: ctl.code }, { gateway: false, answer: ctl.stdout }];
}

describe('--host-whitelist and --cors (compared with etcd)', () => {
  const results = new Map<TargetName, unknown[]>();

  test('the same requests on each target', async () => {
    await Promise.all(targets.map(async (target) => {
      const s = await startServer({ target, extraArgs: accessFlags });
      servers.push(s);
      results.set(target, (await accessAnswers(s)).map((a) => a.answer));
      await s.destroy();
    }));
  });

  for (const target of targets) {
    test(`${target}: a foreign Host is refused with 421 and etcd's text; allowed ones pass with their CORS headers`, () => {
      const r = results.get(target)! as Array<{ status: number; body: string; headers: Record<string, string | undefined> }>;
      assert.equal(r[0]!.status, 421);
      assert.match(r[0]!.body, /^\netcd received your request, but the Host header was unrecognized\.\n/);
      assert.match(r[0]!.body, /--host-whitelist "evil\.example"\n/);
      assert.equal(r[0]!.headers['access-control-allow-origin'], undefined);
      assert.equal(r[2]!.status, 421);
      assert.equal(r[4]!.status, 200);
      assert.equal(r[4]!.headers['access-control-allow-origin'], 'http://allowed.example:8080');
      assert.equal(r[5]!.headers['access-control-allow-origin'], undefined);
      assert.equal(r[8]!.status, 200);
      assert.equal(r[11], 0);
      assert.equal(r[12], 'OK\n');
    });
  }

  if (targets.includes('etcd') && targets.includes('concord')) {
    test('every answer equals etcd\'s (status, body, content type, CORS headers)', () => {
      const e = results.get('etcd')!;
      const c = results.get('concord')!;
      e.forEach((x, i) => assert.deepEqual(c[i], x, `request ${i}`));
    });
  }
});

/** A gateway watch held open: resolves once its "created" line arrived; `close` ends it as curl's exit would. */
function gatewayWatch(endpoint: string): Promise<{ close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${endpoint}/v3/watch`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (c) => {
        text += c;
        if (text.includes('"created":true')) resolve({ close: () => req.destroy() });
      });
      res.on('error', () => { /* closed by the test */ });
    });
    req.on('error', (e) => { if (!req.destroyed) reject(e); });
    // The body stays open, as curl's does while the watch runs.
    req.write(JSON.stringify({ create_request: { key: b64('foo'), start_revision: '1' } }));
  });
}

/** A gateway range; `settled` tells whether it has answered yet. */
function gatewayRange(endpoint: string): { answer: Promise<Answer>; settled: () => boolean; abort: () => void } {
  let done = false;
  const ac = new AbortController();
  const answer = new Promise<Answer>((resolve, reject) => {
    const req = http.request(`${endpoint}/v3/kv/range`, { method: 'POST', agent: false, signal: ac.signal, headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => { done = true; resolve({ status: res.statusCode ?? 0, body, headers: {} }); });
    });
    req.on('error', (e) => { done = true; reject(e); });
    req.end(JSON.stringify({ key: b64('foo') }));
  });
  answer.catch(() => { /* aborted by the test */ });
  return { answer, settled: () => done, abort: () => ac.abort() };
}

/** How long a call that should wait is watched for an answer it must not give (a failure shows as an early answer). */
const waitWindowMs = 1500;

/** etcd's e2e v3_curl_maxstream: below the limit a gateway range answers; at it the range waits until a watch ends. */
async function maxStreamsGatewaySteps(target: TargetName, env?: Record<string, string>): Promise<void> {
  const s = await startServer({ target, extraArgs: ['--max-concurrent-streams=3'], ...(env ? { env } : {}) });
  servers.push(s);
  const watches = [await gatewayWatch(s.endpoint), await gatewayWatch(s.endpoint)];
  const below = await gatewayRange(s.endpoint).answer;
  assert.equal(below.status, 200);
  assert.match(below.body, /"revision":"/);

  watches.push(await gatewayWatch(s.endpoint));
  const waiting = gatewayRange(s.endpoint);
  await sleep(waitWindowMs);
  assert.equal(waiting.settled(), false, 'the range answered although three watches hold every stream');
  // A client that gives up while waiting leaves no trace (curl's timeout in etcd's e2e).
  waiting.abort();
  const second = gatewayRange(s.endpoint);
  await sleep(200);
  watches.shift()!.close();
  const after = await second.answer;
  assert.equal(after.status, 200);
  assert.match(after.body, /"revision":"/);
  for (const w of watches) w.close();
  await s.destroy();
}

describe('--max-concurrent-streams=3 (etcd\'s e2e v3_curl_maxstream)', () => {
  for (const target of targets) {
    test(`${target}: below the limit a gateway range answers; at it the range waits until a watch ends`, () => maxStreamsGatewaySteps(target));

    test(`${target}: a gRPC client over one connection waits for a stream past the limit`, async () => {
      const s = await startServer({ target, extraArgs: ['--max-concurrent-streams=2'] });
      servers.push(s);
      const client = new EtcdClient(s.endpoint);
      try {
        await client.put({ key: Buffer.from('foo'), value: Buffer.from('bar') });
        const w1 = new WatchStreamClient(client);
        const w2 = new WatchStreamClient(client);
        w1.create({ key: Buffer.from('foo') });
        w2.create({ key: Buffer.from('foo') });
        await w1.count(1, 'first watch created');
        await w2.count(1, 'second watch created');
        let done = false;
        const range = client.range({ key: Buffer.from('foo') }).finally(() => { done = true; });
        await sleep(waitWindowMs);
        assert.equal(done, false, 'a third stream ran although the server allows two');
        w1.close();
        const r = await range;
        assert.equal(r.kvs[0]!.value.toString(), 'bar');
        w2.close();
      } finally {
        client.close();
        await s.destroy();
      }
    });
  }
});

/** The SETTINGS_MAX_CONCURRENT_STREAMS a server advertises on an h2c connection, read after one answered gRPC call (Status). */
async function advertisedMaxStreams(endpoint: string): Promise<number | undefined> {
  const session = http2.connect(endpoint);
  try {
    await new Promise<void>((resolve, reject) => {
      session.on('error', reject);
      const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Status', 'content-type': 'application/grpc', te: 'trailers' });
      req.on('error', reject);
      req.on('response', () => { req.resume(); resolve(); });
      req.end(Buffer.alloc(5)); // one empty StatusRequest
    });
    return session.remoteSettings.maxConcurrentStreams;
  } finally {
    session.destroy();
  }
}

// The worker-thread API mode (CONCORD_API_THREAD=1) relays HTTP/1.1 to the main thread, which
// serves the gateway behind the same access controller; HTTP/2's stream limit is the worker's.
describe('the worker-thread API mode honours --cors, --host-whitelist and --max-concurrent-streams', () => {
  const inWorker = { CONCORD_API_THREAD: '1' };

  test('the access-control answers, the gateway\'s included, equal etcd\'s', async (t) => {
    if (!targets.includes('etcd') || !targets.includes('concord')) return t.skip('needs both targets');
    const [e, c] = await Promise.all((['etcd', 'concord'] as const).map(async (target) => {
      const s = await startServer({ target, extraArgs: accessFlags, env: inWorker });
      servers.push(s);
      try {
        return (await accessAnswers(s)).map((a) => a.answer);
      } finally {
        await s.destroy();
      }
    }));
    assert.equal(e!.length, 13);
    e!.forEach((x, i) => assert.deepEqual(c![i], x, `request ${i}`));
  });

  test('concord: the gateway\'s calls share --max-concurrent-streams as in-thread', async (t) => {
    if (!targets.includes('concord')) return t.skip('needs concord');
    await maxStreamsGatewaySteps('concord', inWorker);
  });

  test('the advertised HTTP/2 stream limit equals etcd\'s', async () => {
    const seen = await Promise.all(targets.map(async (target) => {
      const s = await startServer({ target, extraArgs: ['--max-concurrent-streams=2'], env: inWorker });
      servers.push(s);
      try {
        return await advertisedMaxStreams(s.endpoint);
      } finally {
        await s.destroy();
      }
    }));
    for (const n of seen) assert.equal(n, 2);
  });
});
