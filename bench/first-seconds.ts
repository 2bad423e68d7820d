// How fast a fresh server serves in its first seconds (not a test): `node dist/bench/first-seconds.js
// [--pairs 6] [--seconds 8] [--clients 1] [--node-args "..."] [--env K=V,K=V] [--targets concord,etcd]`.
//
// Each round starts every variant fresh (Concord as the targets list it, and with --node-args
// a second Concord under those Node flags or that environment; etcd if listed), in alternating order, and drives it
// with the bench's load generator (puts of 256-byte values over a 100k key space, no warm-up)
// for --seconds, printing the requests served in each second and in the first 4, and each
// second's p99 latency (the generator's, over that second's requests). A fresh V8
// runs the request path in its interpreter until TurboFan has compiled it, so Concord climbs to
// its steady rate over the first seconds (issue 14, sessions 40-41; cli/early-tier-up.ts).
import { forkGenerator } from './generator-process.js';
import { Server, type TargetName } from '../test/harness.js';
import type { LoadConfig, LoadResult } from './loadgen.js';
import { parseEnvList } from './env-list.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1]! : fallback;
}

const pairs = Number(option('pairs', '6'));
const seconds = Number(option('seconds', '8'));
const clients = Number(option('clients', '1'));
const variantArgs = option('node-args', '').split(' ').filter(Boolean);
/** The variant's environment (K=V,K=V), with or instead of --node-args. */
const variantEnv = parseEnvList(option('env', ''));
const targets = option('targets', 'concord').split(',') as TargetName[];
for (const t of targets) if (t !== 'concord' && t !== 'etcd') throw new Error(`--targets: unknown target ${t}`);

interface Variant { label: string; target: TargetName; nodeArgs: string[]; env: Record<string, string> }
const hasVariant = variantArgs.length > 0 || Object.keys(variantEnv).length > 0;
const variantLabel = ['concord', ...variantArgs, ...Object.entries(variantEnv).map(([k, v]) => `${k}=${v}`)].join(' ');
const variants: Variant[] = targets.flatMap((target): Variant[] => (target === 'concord' && hasVariant
  ? [{ label: 'concord', target, nodeArgs: [], env: {} }, { label: variantLabel, target, nodeArgs: variantArgs, env: variantEnv }]
  : [{ label: target, target, nodeArgs: [], env: {} }]));

/**
 * Requests served per second between the generator's progress reports (about one a second)
 * and, last, up to its final tally, each over the time that really passed between the two, so
 * a late report does not merge two seconds unseen and the window's last part (half a second or
 * more) is not dropped; the requests served in the first 4 s (at the report nearest to 4 s);
 * and the generator's final tally.
 */
async function perSecond(endpoint: string): Promise<{ rates: number[]; p99s: number[]; firstFour: number; total: number }> {
  const config: LoadConfig = {
    endpoint, op: 'put', clients, connections: Math.min(clients, 10), valueBytes: 256, keySpace: 100_000,
    rangeKey: 'x', serializable: false, warmupMs: 0, durationMs: seconds * 1000, totalRequests: 0, progressP99: true,
  };
  const points: Array<{ ms: number; requests: number; p99Ms: number }> = [{ ms: 0, requests: 0, p99Ms: NaN }];
  let total = 0;
  const child = forkGenerator(new URL('./loadgen.js', import.meta.url).pathname, config, ['ignore', 'inherit', 'inherit', 'ipc']);
  child.on('message', (m: { type: string; phase?: string; elapsedMs?: number; requests?: number; recentP99Ms?: number; result?: LoadResult }) => {
    if (m.type === 'progress' && m.phase === 'measure' && m.elapsedMs! > points.at(-1)!.ms) points.push({ ms: m.elapsedMs!, requests: m.requests!, p99Ms: m.recentP99Ms! });
    if (m.type !== 'result') return;
    total = m.result!.requests;
    // A last stretch of a few ms would print a rate of noise.
    if (m.result!.elapsedMs - points.at(-1)!.ms >= 500) points.push({ ms: m.result!.elapsedMs, requests: total, p99Ms: NaN });
  });
  await new Promise((resolve) => child.on('exit', resolve));
  const rates = points.slice(1).map((p, i) => Math.round(((p.requests - points[i]!.requests) * 1000) / (p.ms - points[i]!.ms)));
  const nearFour = points.reduce((best, p) => (Math.abs(p.ms - 4000) < Math.abs(best.ms - 4000) ? p : best));
  const p99s = points.slice(1).map((p) => p.p99Ms);
  return { rates, p99s, firstFour: nearFour.requests, total };
}

for (let round = 1; round <= pairs; round++) {
  const order = round % 2 === 1 ? variants : [...variants].reverse();
  for (const v of order) {
    const server = new Server({ target: v.target, name: 'first-seconds', nodeArgs: v.nodeArgs, env: v.env });
    try {
      await server.start();
      const { rates, p99s, firstFour, total } = await perSecond(server.endpoint);
      console.log(`round ${round} ${v.label.padEnd(24)} per second: ${rates.join(' ')} | first 4 s ${firstFour}, then ${total - firstFour}`);
      console.log(`round ${round} ${v.label.padEnd(24)} p99 ms:     ${p99s.map((p) => (Number.isNaN(p) ? '-' : p.toFixed(2))).join(' ')}`);
    } finally {
      await server.destroy();
    }
  }
}
