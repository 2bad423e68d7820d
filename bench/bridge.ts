// Micro-benchmark of the API worker hand-off (src/api/bridge.ts): records of `size` bytes
// echoed main -> worker -> main in batches of `batch`, as the transport worker does per turn.
// Prints µs per record round trip. `node dist/bench/bridge.js`
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { BatchWriter, readBatch } from '../src/api/bridge.js';

if (isMainThread) {
  const worker = new Worker(new URL(import.meta.url));
  const out = new BatchWriter((ab) => worker.postMessage(ab, [ab]));
  const payload = Buffer.alloc(300, 7);
  const run = (batch: number, total: number): Promise<number> => new Promise((resolve) => {
    let got = 0;
    let sent = 0;
    const t0 = process.hrtime.bigint();
    const onMsg = (ab: ArrayBuffer): void => {
      readBatch(ab, () => { got++; });
      if (got >= total) { worker.off('message', onMsg); resolve(Number(process.hrtime.bigint() - t0) / 1e3 / total); return; }
      if (got === sent) send();
    };
    const send = (): void => { for (let i = 0; i < batch; i++) out.push(1, sent++, 0, payload, true); };
    worker.on('message', onMsg);
    send();
  });
  for (const batch of [1, 10, 50, 100]) {
    await run(batch, 20_000);
    console.log(`batch ${String(batch).padStart(3)}: ${(await run(batch, 50_000)).toFixed(2)} µs per record round trip`);
  }
  await worker.terminate();
} else {
  const out = new BatchWriter((ab) => parentPort!.postMessage(ab, [ab]));
  parentPort!.on('message', (ab: ArrayBuffer) => readBatch(ab, (t, id, arg, p) => out.push(t, id, arg, p.subarray(5), true)));
}
