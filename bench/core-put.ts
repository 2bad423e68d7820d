// The cost of a put below the front end (not a test): `node dist/bench/core-put.js [options]`.
//
// One member in-process (server/test-member.ts: the real EtcdServer, raft loop, applier, MVCC
// store and LMDB backend over the in-memory WAL), driven through EtcdServer.put as the gRPC
// service calls it (decoded request plus the client's raw bytes), by `--clients` concurrent
// callers (requests built beforehand). No sockets, no HTTP/2, no WAL file: what is left is the propose, raft, apply and
// backend path, and what it allocates does not depend on the machine's load (CPU does, less
// than a client/server run's). Prints, per put over the measured window:
//   alloc B     bytes V8 allocated (--trace-gc-nvp's `allocated`, summed over the window's GCs)
//   promoted B  bytes scavenges moved to the old generation (what later makes mark-compacts)
//   CPU us      the process's user+system CPU (one thread does the work; V8's GC helpers too)
//
// Options: --requests 20000 --clients 100 --repeat 3 --warmup 5000
//          --op put|range-s|range-l   what the callers do: a put (EtcdServer.put), or a Range of
//                 one 256-byte key as a gRPC call runs it, bytes in to bytes out (services.ts's
//                 method table: decode, checks, the store's read, the response encoder)
// It runs itself in a child with --trace-gc-nvp (`--child` marks that run).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { startTestMember } from '../src/server/test-member.js';
import { PutRequest, RangeRequest } from '../src/proto/index.js';
import { etcdMethods } from '../src/api/services.js';

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const requests = Number(opt('requests', '20000'));
const clients = Number(opt('clients', '100'));
const repeat = Number(opt('repeat', '3'));
const warmup = Number(opt('warmup', '5000'));
const op = opt('op', 'put');
if (!['put', 'range-s', 'range-l'].includes(op)) throw new Error(`--op must be put, range-s or range-l, got ${op}`);

const startMarker = 'CORE-PUT-WINDOW-START';
const endMarker = 'CORE-PUT-WINDOW-END';

/** The child: puts `warmup` then `requests` times from `clients` callers, markers around the window. */
async function child(): Promise<void> {
  const m = await startTestMember();
  for (let i = 0; i < 500 && m.raft.leader === 0n; i++) await new Promise((r) => setTimeout(r, 10));
  // Requests are built before the window (and reused: the server copies what it keeps), so
  // the window's bytes are the server's alone, not the callers' encoding.
  const value = Buffer.alloc(256, 120);
  const pool = Array.from({ length: 4096 }, () => {
    const req: PutRequest = { key: Buffer.from(`k${String(Math.floor(Math.random() * 100_000)).padStart(5, '0')}`), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
    return { req, raw: PutRequest.encode(req).finish() };
  });
  let next = 0;
  const rangeKey = Buffer.from('bench/range-key');
  if (op !== 'put') await m.server.put({ ...pool[0]!.req, key: rangeKey }, PutRequest.encode({ ...pool[0]!.req, key: rangeKey }).finish());
  const range = etcdMethods(m.server).methods.find((x) => x.path === '/etcdserverpb.KV/Range');
  if (range?.kind !== 'unary') throw new Error('no unary Range in the method table');
  const rangeBody = Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: rangeKey, serializable: op === 'range-s' })).finish());
  const run = async (n: number): Promise<void> => {
    let left = n;
    const caller = async (): Promise<void> => {
      while (left-- > 0) {
        if (op !== 'put') {
          await range.run(rangeBody);
          continue;
        }
        const p = pool[next++ & 4095]!;
        await m.server.put(p.req, p.raw);
      }
    };
    await Promise.all(Array.from({ length: clients }, caller));
  };
  await run(warmup);
  const cpu0 = process.cpuUsage();
  console.log(startMarker);
  await run(requests);
  console.log(endMarker);
  const cpu = process.cpuUsage(cpu0);
  console.log(`CORE-PUT-CPU ${(cpu.user + cpu.system) / requests}`);
  await m.close();
}

interface Run { allocB: number; promotedB: number; cpuUs: number }

/** One child run; sums --trace-gc-nvp's fields between the markers. */
function once(): Promise<Run> {
  const self = fileURLToPath(import.meta.url);
  const args = ['--trace-gc-nvp', self, '--child', '--requests', String(requests), '--clients', String(clients), '--warmup', String(warmup), '--op', op];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let inWindow = false;
    let partial = '';
    const r: Run = { allocB: 0, promotedB: 0, cpuUs: NaN };
    p.stdout.on('data', (d: Buffer) => {
      const lines = (partial + d.toString('latin1')).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (l === startMarker) inWindow = true;
        else if (l === endMarker) inWindow = false;
        else if (l.startsWith('CORE-PUT-CPU ')) r.cpuUs = Number(l.slice(13));
        else if (inWindow && l.includes(' gc=')) {
          r.allocB += Number(/ allocated=(\d+)/.exec(l)?.[1] ?? 0);
          r.promotedB += Number(/ promoted=(\d+)/.exec(l)?.[1] ?? 0);
        }
      }
    });
    p.on('exit', (code) => (code === 0 ? resolve({ allocB: r.allocB / requests, promotedB: r.promotedB / requests, cpuUs: r.cpuUs }) : reject(new Error(`core-put child exited ${code}`))));
  });
}

if (process.argv.includes('--child')) {
  await child();
  process.exit(0);
} else {
  const runs: Run[] = [];
  for (let i = 0; i < repeat; i++) {
    const r = await once();
    runs.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  console.log(`core-put: ${requests} ${op === 'put' ? 'puts' : `${op} calls (per put: per call)`}, ${clients} callers in-process (memory WAL), ${repeat} reps, medians; load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(['alloc B/put', 'promoted B/put', 'CPU us/put'].join('\t'));
  console.log([median(runs.map((r) => r.allocB)).toFixed(0), median(runs.map((r) => r.promotedB)).toFixed(0), median(runs.map((r) => r.cpuUs)).toFixed(1)].join('\t'));
}
