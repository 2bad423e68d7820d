// `npm run bench:auth`: put and range with 100 clients (10 connections) against real etcd and
// Concord in the same run, three ways: plain, auth on (root's simple token on every request,
// so every request is resolved to a user and checked), and TLS on (https, server certificate
// checked against a test CA). Each scenario runs on one target after the other; the table gives
// req/s, p99, the Concord/etcd ratio and each server's CPU time per 1,000 requests per way, so the
// cost of auth and TLS can be read as the change against the plain rows of the same run (CPU per
// request is the steadier measure on a busy machine).
//
// Options (flags or env):
//   --duration 5  --warmup 1  --repeat 1 (medians over repeats)   BENCH_DURATION_S BENCH_WARMUP_S BENCH_REPEAT
//   --modes plain,auth,tls   --scenarios put,range                BENCH_MODES BENCH_SCENARIOS
import { forkGenerator } from './generator-process.js';
import { cpuMs } from './proc-cpu.js';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server } from '../test/harness.js';
import { makeTestPki, type TestPki } from '../test/tls-certs.js';
import { AuthenticateRequest, AuthenticateResponse } from '../src/proto/gen/etcdserverpb/rpc.js';
import type { LoadConfig, LoadResult } from './loadgen.js';
import { rangeKey } from './range-key.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string, env: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : process.env[env] ?? def;
};
const durationS = Number(arg('duration', 'BENCH_DURATION_S', '5'));
const warmupS = Number(arg('warmup', 'BENCH_WARMUP_S', '1'));
const repeat = Math.max(1, Number(arg('repeat', 'BENCH_REPEAT', '1')));
const modes = arg('modes', 'BENCH_MODES', 'plain,auth,tls').split(',') as Mode[];
const ops = arg('scenarios', 'BENCH_SCENARIOS', 'put,range').split(',') as Array<'put' | 'range'>;
const targets = ['etcd', 'concord'] as const;
type Mode = 'plain' | 'auth' | 'tls';

/** A started target in one mode, with what its load needs (token, CA). */
interface Up { server: Server; token?: string; caFile?: string }

async function bringUp(target: typeof targets[number], mode: Mode, pki: TestPki): Promise<Up> {
  const tls = mode === 'tls' ? ['--cert-file', pki.serverCert, '--key-file', pki.serverKey] : [];
  const server = new Server({ target, name: 'bench', scheme: mode === 'tls' ? 'https' : 'http', extraArgs: [...tls, '--bcrypt-cost', '4'] });
  await server.start();
  const ctlTls = mode === 'tls' ? ['--cacert', pki.ca] : [];
  const ctl = async (args: string[]) => {
    const r = await server.etcdctl([...ctlTls, ...args]);
    if (r.code !== 0) throw new Error(`${target} etcdctl ${args.join(' ')}: ${r.stderr}`);
  };
  await ctl(['put', rangeKey, 'v'.repeat(256)]);
  if (mode !== 'auth') return { server, ...(mode === 'tls' ? { caFile: pki.ca } : {}) };
  await ctl(['user', 'add', 'root:rootpw', '--interactive=false']);
  await ctl(['auth', 'enable']);
  const c = server.client();
  try {
    const { token } = await c.unary('/etcdserverpb.Auth/Authenticate', AuthenticateRequest, AuthenticateResponse, { name: 'root', password: 'rootpw' });
    return { server, token };
  } finally {
    c.close();
  }
}

/** One load run: its result and the server's CPU ms per request over the measured window (steadier than rates on a busy machine). */
function load(up: Up, op: 'put' | 'range'): Promise<LoadResult & { cpuMsPerReq: number }> {
  const cfg: LoadConfig = {
    endpoint: up.server.endpoint, op, clients: 100, connections: 10, valueBytes: 256, keySpace: 100_000, rangeKey,
    serializable: false, warmupMs: warmupS * 1000, durationMs: durationS * 1000, totalRequests: 0,
    ...(up.token ? { token: up.token } : {}), ...(up.caFile ? { caFile: up.caFile } : {}),
  };
  return new Promise((resolve, reject) => {
    const child = forkGenerator(join(here, 'loadgen.js'), cfg, ['ignore', 'inherit', 'inherit', 'ipc']);
    let result: (LoadResult & { cpuMsPerReq: number }) | undefined;
    let cpu0 = 0;
    const pid = up.server.pid!;
    child.on('message', (m: { type: string; result?: LoadResult }) => {
      if (m.type === 'window-start') cpu0 = cpuMs(pid);
      if (m.type === 'result') result = { ...m.result!, cpuMsPerReq: (cpuMs(pid) - cpu0) / Math.max(1, m.result!.requests) };
    });
    child.on('error', reject);
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`load generator exited with ${code}`))));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const pki = makeTestPki();
  const rows: string[] = [];
  const load0 = loadavg();
  try {
    for (const mode of modes) {
      const ups: Up[] = [];
      try {
        for (const t of targets) ups.push(await bringUp(t, mode, pki));
        for (const op of ops) {
          const res = new Map<string, Array<LoadResult & { cpuMsPerReq: number }>>();
          for (let r = 0; r < repeat; r++) {
            for (const up of ups) {
              process.stderr.write(`${mode} ${op} ${up.server.target} #${r + 1}...\n`);
              const x = await load(up, op);
              if (x.errors > 0) throw new Error(`${up.server.target} ${mode} ${op}: ${x.errors} errors, first: ${x.firstError}`);
              res.set(up.server.target, [...(res.get(up.server.target) ?? []), x]);
            }
          }
          const [e, c] = targets.map((t) => res.get(t)!);
          type R = LoadResult & { cpuMsPerReq: number };
          const rate = (xs: R[]) => median(xs.map((x) => x.throughput));
          const p99 = (xs: R[]) => median(xs.map((x) => x.p99Ms));
          const cpu = (xs: R[]) => median(xs.map((x) => x.cpuMsPerReq * 1000));
          rows.push(`| ${op} 100 clients | ${mode} | ${rate(e!).toFixed(0)} | ${rate(c!).toFixed(0)} | ${(rate(c!) / rate(e!)).toFixed(2)}x | ${p99(e!).toFixed(1)} | ${p99(c!).toFixed(1)} | ${cpu(e!).toFixed(0)} | ${cpu(c!).toFixed(0)} |`);
        }
      } finally {
        for (const up of ups) await up.server.destroy();
      }
    }
  } finally {
    pki.remove();
  }
  const load1 = loadavg();
  console.log(`\nbench:auth — ${durationS}s per run, ${repeat} run(s), medians; load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}`);
  console.log('| scenario | mode | etcd req/s | concord req/s | concord/etcd | etcd p99 ms | concord p99 ms | etcd CPU ms/1k req | concord CPU ms/1k req |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

main().catch((e) => { console.error(e); process.exit(1); });
