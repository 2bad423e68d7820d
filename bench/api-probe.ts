/**
 * Throughput probe for the API front end (not a test): our node:http2 gRPC server against a
 * grpc-js server, both answering KV.Range from the same in-memory fake, driven by grpc-js
 * clients in a separate process (so client and server do not share an event loop).
 *
 *   node dist/bench/api-probe.js [seconds=3] [connections=10] [concurrency=100] [rounds=3] [client=grpc-js|h2]
 *
 * client=h2 drives the servers with a bare node:http2 client sending pre-framed requests,
 * which costs the client process far less than grpc-js, so the server is more likely to be
 * the bottleneck.
 *
 * Prints calls/s and latency percentiles per run and the median per server.
 */
import { fork } from 'node:child_process';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { startApi } from '../src/api/index.js';
import { FakeService } from '../src/api/testkit.js';
import { RangeRequest, RangeResponse } from '../src/proto/gen/etcdserverpb/rpc.js';

const args = process.argv[2] === 'client' ? [] : process.argv.slice(2);
const [seconds = 3, connections = 10, concurrency = 100, rounds = 3] = args.slice(0, 4).map(Number);
const clientKind = args[4] ?? 'grpc-js';

interface RunResult { calls: number; seconds: number; p50: number; p99: number; errors: number }

async function client(target: string, seconds: number, connections: number, concurrency: number, kind: string): Promise<RunResult> {
  const req = Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('foo'), serializable: true })).finish());
  if (kind === 'h2') return h2Client(target, seconds, connections, concurrency, req);
  const clients = Array.from({ length: connections }, () =>
    new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const id = (b: Buffer): Buffer => b;
  const call = (c: grpc.Client): Promise<void> => new Promise((resolve, reject) => {
    c.makeUnaryRequest('/etcdserverpb.KV/Range', id, id, req, (err) => (err ? reject(err) : resolve()));
  });
  // Warm up: connect every channel.
  await Promise.all(clients.map((c) => call(c)));
  const lat: number[] = [];
  let errors = 0;
  let stop = false;
  const start = performance.now();
  const timer = setTimeout(() => { stop = true; }, seconds * 1000);
  await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    const c = clients[i % connections]!;
    while (!stop) {
      const t = performance.now();
      try { await call(c); lat.push(performance.now() - t); } catch { errors++; }
    }
  }));
  clearTimeout(timer);
  const elapsed = (performance.now() - start) / 1000;
  for (const c of clients) c.close();
  lat.sort((a, b) => a - b);
  return { calls: lat.length, seconds: elapsed, p50: lat[Math.floor(lat.length * 0.5)] ?? 0, p99: lat[Math.floor(lat.length * 0.99)] ?? 0, errors };
}

async function h2Client(target: string, seconds: number, connections: number, concurrency: number, req: Buffer): Promise<RunResult> {
  const framed = Buffer.alloc(req.length + 5);
  framed.writeUInt32BE(req.length, 1);
  req.copy(framed, 5);
  const sessions = await Promise.all(Array.from({ length: connections }, () => new Promise<http2.ClientHttp2Session>((resolve, reject) => {
    const s = http2.connect(`http://${target}`);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  })));
  const headers = { ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/grpc', te: 'trailers' };
  const call = (s: http2.ClientHttp2Session): Promise<boolean> => new Promise((resolve) => {
    const st = s.request(headers);
    let ok = false;
    st.on('trailers', (t) => { ok = t['grpc-status'] === '0'; });
    st.on('data', () => {});
    st.on('close', () => resolve(ok));
    st.end(framed);
  });
  const lat: number[] = [];
  let errors = 0;
  let stop = false;
  const start = performance.now();
  const timer = setTimeout(() => { stop = true; }, seconds * 1000);
  await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    const s = sessions[i % connections]!;
    while (!stop) {
      const t = performance.now();
      if (await call(s)) lat.push(performance.now() - t); else errors++;
    }
  }));
  clearTimeout(timer);
  const elapsed = (performance.now() - start) / 1000;
  for (const s of sessions) s.close();
  lat.sort((a, b) => a - b);
  return { calls: lat.length, seconds: elapsed, p50: lat[Math.floor(lat.length * 0.5)] ?? 0, p99: lat[Math.floor(lat.length * 0.99)] ?? 0, errors };
}

async function startGrpcJs(service: FakeService): Promise<{ target: string; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService({
    Range: {
      path: '/etcdserverpb.KV/Range', requestStream: false, responseStream: false,
      requestDeserialize: (b: Buffer) => RangeRequest.decode(b),
      requestSerialize: (m: RangeRequest) => Buffer.from(RangeRequest.encode(m).finish()),
      responseSerialize: (m: RangeResponse) => Buffer.from(RangeResponse.encode(m).finish()),
      responseDeserialize: (b: Buffer) => RangeResponse.decode(b),
    },
  } as grpc.ServiceDefinition, {
    Range: (call: grpc.ServerUnaryCall<RangeRequest, RangeResponse>, cb: grpc.sendUnaryData<RangeResponse>) => {
      service.range(call.request).then((r) => cb(null, r), (e) => cb(e));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { target: `127.0.0.1:${port}`, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

async function startOurs(service: FakeService): Promise<{ target: string; close(): Promise<void> }> {
  const api = await startApi({ service, listen: [new URL('http://127.0.0.1:0')] });
  return { target: new URL(api.addresses[0]!).host, close: () => api.close() };
}

function runClient(target: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['client', target, String(seconds), String(connections), String(concurrency), clientKind]);
    child.once('message', (m) => resolve(m as RunResult));
    child.once('error', reject);
    child.once('exit', (code) => { if (code !== 0) reject(new Error(`client exited ${code}`)); });
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === 'client') {
    const [, , , target, s, n, c, kind] = process.argv;
    process.send!(await client(target!, Number(s), Number(n), Number(c), kind!));
    process.exit(0);
  }
  const service = new FakeService();
  await service.put({ key: Buffer.from('foo'), value: Buffer.alloc(256, 'v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
  const servers = { 'concord node:http2': startOurs, 'grpc-js server': startGrpcJs };
  const results: Record<string, number[]> = {};
  const cpuResults: Record<string, number[]> = {};
  console.log(`KV.Range, ${concurrency} concurrent calls over ${connections} connections, ${seconds}s per run, ${rounds} rounds, ${clientKind} client`);
  for (let r = 0; r < rounds; r++) {
    for (const [name, start] of Object.entries(servers)) {
      const s = await start(service);
      const cpu0 = process.cpuUsage();
      const res = await runClient(s.target);
      const cpu = process.cpuUsage(cpu0);
      await s.close();
      const rate = res.calls / res.seconds;
      // Server CPU per call holds up better than calls/s when other work shares the machine.
      const usPerCall = (cpu.user + cpu.system) / Math.max(1, res.calls);
      (results[name] ??= []).push(rate);
      (cpuResults[name] ??= []).push(usPerCall);
      console.log(`  ${name.padEnd(20)} ${rate.toFixed(0).padStart(7)} calls/s  server CPU ${usPerCall.toFixed(1)} µs/call  p50 ${res.p50.toFixed(2)} ms  p99 ${res.p99.toFixed(2)} ms  errors ${res.errors}`);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ours = median(results['concord node:http2']!);
  const theirs = median(results['grpc-js server']!);
  console.log(`median: concord ${ours.toFixed(0)} calls/s, grpc-js ${theirs.toFixed(0)} calls/s, ratio ${(ours / theirs).toFixed(2)}x`);
  const oursCpu = median(cpuResults['concord node:http2']!);
  const theirsCpu = median(cpuResults['grpc-js server']!);
  console.log(`median server CPU: concord ${oursCpu.toFixed(1)} µs/call, grpc-js ${theirsCpu.toFixed(1)} µs/call, ratio ${(theirsCpu / oursCpu).toFixed(2)}x less`);
}

await main();
