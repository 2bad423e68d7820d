// The shape shared by the auth matrices: one run per selected target, each a list of answer
// lines; the run on Concord (and, if asked, on Concord with its worker-thread API) compared
// with etcd's line by line. Call inside a describe().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectedTargets, targetsWithWorkerThreadApi, type TargetName, type TargetVariant } from './harness.js';

export type MatrixRun = (target: TargetName, env?: Record<string, string>) => Promise<string[]>;

/**
 * `sanity`: checks on one target's lines alone. `workerThread`: also run Concord with
 * CONCORD_API_THREAD=1. `deliberate`: lines (by etcd's line) where Concord differs on purpose,
 * left out of the comparison; `sanity` should pin Concord's answer there.
 */
export function matrixTests(run: MatrixRun, sanity: (out: string[], target: TargetName) => void,
  opts: { workerThread?: boolean; deliberate?: (etcdLine: string) => boolean } = {}): void {
  const results = new Map<string, string[]>();
  const variants: Array<[string, TargetName, Record<string, string>]> = (opts.workerThread ? targetsWithWorkerThreadApi() : selectedTargets().map((target): TargetVariant => ({ target, label: target })))
    .map((v) => [v.label, v.target, v.env ?? {}]);
  for (const [name, target, env] of variants) {
    test(`${name}: the matrix runs`, async () => {
      const out = await run(target, env);
      results.set(name, out);
      if (process.env.AUTH_DEBUG) console.log(out.join('\n'));
      sanity(out, target);
    });
  }
  for (const [name] of variants.filter(([n]) => n !== 'etcd')) {
    test(`${name} answers as etcd does`, { skip: !selectedTargets().includes('etcd') }, () => {
      const etcd = results.get('etcd');
      const concord = results.get(name);
      assert.ok(etcd && concord, 'both runs finished');
      assert.equal(concord.length, etcd.length);
      const diffs = etcd.map((e, i) => (e === concord[i] || opts.deliberate?.(e) ? undefined : `etcd    ${e}\n${name} ${concord[i]}`)).filter((d) => d !== undefined);
      assert.deepEqual(diffs, []);
    });
  }
}
