// `snapshot status`'s size column as etcd's tools print it (go-humanize's Bytes, whose %.0f
// rounds half to even: a 12.5 MB file is "12 MB", a 13.5 MB one "14 MB"). bbolt files of
// chosen page counts are written with our bbolt writer (status reads any bbolt file, as
// etcdctl's does); real etcdctl, concordutl and concordctl print the same lines for each.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planBoltFile, type BoltBucketSource } from '../src/bbolt/index.js';
import { runConcord, runEtcd } from './harness.js';
import { concordutl } from './concordutl-cli.js';
import { runTool } from './ctl-tools.js';

const dir = mkdtempSync(join(tmpdir(), 'concord-status-size-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const pageSize = 4096;

/** A "key" bucket of `n` revisions, each value filling most of a page (so about one leaf page each). */
function keyBucket(n: number): BoltBucketSource {
  return {
    name: Buffer.from('key'),
    *entries() {
      for (let i = 1; i <= n; i++) {
        const k = Buffer.alloc(17);
        k.writeBigUInt64BE(BigInt(i), 0);
        k[8] = 0x5f;
        yield [k, Buffer.alloc(3000, i % 251)] as const;
      }
    },
  };
}

/** The bytes of a bbolt file exactly `pages` pages long (its high-water mark is what status reports). */
function boltFileOfPages(pages: number): Buffer {
  let n = pages;
  for (let tries = 0; tries < 20; tries++) {
    const plan = planBoltFile([keyBucket(n)], { pageSize });
    const got = plan.size / pageSize;
    if (got !== pages) { n += pages - got; continue; }
    const copies: Buffer[] = [];
    for (const page of plan.pages()) copies.push(Buffer.from(page)); // a yielded page is reused by the next
    return Buffer.concat(copies);
  }
  throw new Error(`no bbolt file of ${pages} pages`);
}

test('snapshot status sizes read as etcdctl prints them, halves rounded to even', { skip: !(runEtcd() && runConcord()) && 'needs real etcdctl and Concord' }, async () => {
  // 12.5 MB -> "12 MB", 13.5 MB -> "14 MB", 2.5 MB -> "2.5 MB" (-w table once: the same size cell).
  const cases: Array<[number, string, string[]]> = [[3052, '12 MB', ['simple', 'table']], [3296, '14 MB', ['simple']], [610, '2.5 MB', ['simple']]];
  for (const [pages, size, formats] of cases) {
    const file = join(dir, `${pages}.db`);
    writeFileSync(file, boltFileOfPages(pages));
    for (const w of formats) {
      const want = await runTool('etcdctl', ['snapshot', 'status', file, '-w', w], { cwd: dir });
      assert.equal(want.code, 0, want.stderr);
      assert.ok(want.stdout.includes(size), `${pages} pages: etcdctl printed ${want.stdout}`);
      const utl = await concordutl(['snapshot', 'status', file, '-w', w]);
      assert.deepEqual({ code: utl.code, stdout: utl.stdout }, { code: 0, stdout: want.stdout }, `concordutl, ${pages} pages, -w ${w}: ${utl.stderr}`);
      const ctl = await runTool('concordctl', ['snapshot', 'status', file, '-w', w], { cwd: dir });
      assert.deepEqual({ code: ctl.code, stdout: ctl.stdout }, { code: 0, stdout: want.stdout }, `concordctl, ${pages} pages, -w ${w}: ${ctl.stderr}`);
    }
  }
});
