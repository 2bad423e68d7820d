// How fast a fresh server serves in its first seconds (not a test): `node dist/bench/first-seconds.js
// [--pairs 6] [--seconds 8] [--clients 1] [--node-args "..."] [--targets concord,etcd]`.
//
// Each round starts every variant fresh (Concord as the targets list it, and with --node-args
// a second Concord under those Node flags; etcd if listed), in alternating order, and drives it
// with the bench's load generator (puts of 256-byte values over a 100k key space, no warm-up)
// for --seconds, printing the requests served in each second and in the first 4. A fresh V8
// runs the request path in its interpreter until TurboFan has compiled it, so Concord climbs to
// its steady rate over the first seconds (issue 14, sessions 40-41; cli/early-tier-up.ts).
import { forkGenerator } from './generator-process.js';
import { Server, type TargetName } from '../test/harness.js';
import type { LoadConfig } from './loadgen.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1]! : fallback;
}

const pairs = Number(option('pairs', '6'));
const seconds = Number(option('seconds', '8'));
const clients = Number(option('clients', '1'));
const variantArgs = option('node-args', '').split(' ').filter(Boolean);
const targets = option('targets', 'concord').split(',') as TargetName[];
for (const t of targets) if (t !== 'concord' && t !== 'etcd') throw new Error(`--targets: unknown target ${t}`);

interface Variant { label: string; target: TargetName; nodeArgs: string[] }
const variants: Variant[] = targets.flatMap((target): Variant[] => (target === 'concord' && variantArgs.length > 0
  ? [{ label: 'concord', target, nodeArgs: [] }, { label: `concord ${variantArgs.join(' ')}`, target, nodeArgs: variantArgs }]
  : [{ label: target, target, nodeArgs: [] }]));

/** Requests served in each whole second of the window, from the generator's progress reports. */
async function perSecond(endpoint: string): Promise<number[]> {
  const config: LoadConfig = {
    endpoint, op: 'put', clients, connections: Math.min(clients, 10), valueBytes: 256, keySpace: 100_000,
    rangeKey: 'x', serializable: false, warmupMs: 0, durationMs: seconds * 1000, totalRequests: 0,
  };
  const counts: number[] = [];
  let countedUpTo = 0;
  const child = forkGenerator(new URL('./loadgen.js', import.meta.url).pathname, config, ['ignore', 'inherit', 'inherit', 'ipc']);
  child.on('message', (m: { type: string; phase?: string; elapsedMs?: number; requests?: number }) => {
    if (m.type !== 'progress' || m.phase !== 'measure') return;
    const second = Math.round(m.elapsedMs! / 1000);
    if (second > counts.length) { counts.push(m.requests! - countedUpTo); countedUpTo = m.requests!; }
  });
  await new Promise((resolve) => child.on('exit', resolve));
  return counts;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
for (let round = 1; round <= pairs; round++) {
  const order = round % 2 === 1 ? variants : [...variants].reverse();
  for (const v of order) {
    const server = new Server({ target: v.target, name: 'first-seconds', nodeArgs: v.nodeArgs });
    try {
      await server.start();
      const counts = await perSecond(server.endpoint);
      console.log(`round ${round} ${v.label.padEnd(24)} per second: ${counts.join(' ')} | first 4 s ${sum(counts.slice(0, 4))}, then ${sum(counts.slice(4))}`);
    } finally {
      await server.destroy();
    }
  }
}
