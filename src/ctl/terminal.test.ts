import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colorWanted } from './terminal.js';
import { Printer } from './printer.js';
import { etcdserverpb as pb } from '../client/index.js';

test('colorWanted: only on a terminal, and not with NO_COLOR set to something', () => {
  assert.equal(colorWanted(true, {}), true);
  assert.equal(colorWanted(true, { NO_COLOR: '' }), true);
  assert.equal(colorWanted(true, { NO_COLOR: '1' }), false);
  assert.equal(colorWanted(false, {}), false);
  assert.equal(colorWanted(undefined, {}), false);
});

test('Printer with color: get colors keys and values in the simple format only', () => {
  const kv = { key: Buffer.from('k'), value: Buffer.from('v'), createRevision: 2, modRevision: 2, version: 1, lease: 0n };
  const res: pb.RangeResponse = { header: undefined, kvs: [kv], more: false, count: 1 };
  const run = (format: 'simple' | 'json', color: boolean) => {
    const out: string[] = [];
    new Printer(format, false, (s) => out.push(Buffer.from(s).toString('latin1')), () => {}, color).get(res);
    return out.join('');
  };
  assert.equal(run('simple', true), '\x1b[1;34mk\x1b[0m\n\x1b[32mv\x1b[0m\n');
  assert.equal(run('simple', false), 'k\nv\n');
  assert.doesNotMatch(run('json', true), /\x1b/);
});
