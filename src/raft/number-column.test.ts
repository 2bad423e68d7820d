import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NumberColumn, columnOf } from './number-column.js';

test('NumberColumn holds what was pushed across many blocks, exact up to 2^53, and truncates back', () => {
  const c = new NumberColumn();
  const model: number[] = [];
  const value = (i: number): number => (i % 7 === 0 ? i * 2 ** 32 + 12345 : i % 5 === 0 ? -1 : i);
  for (let i = 0; i < 20_000; i++) { c.push(value(i)); model.push(value(i)); }
  assert.equal(c.length, 20_000);
  for (let k = 0; k < model.length; k += 1) assert.equal(c.at(k), model[k]);
  assert.equal(c.at(19_999 - (19_999 % 7)), (19_999 - (19_999 % 7)) * 2 ** 32 + 12345);
  // Back across a block edge (4,096 per block), then on again: the old values are gone.
  c.truncate(4_095);
  assert.equal(c.length, 4_095);
  assert.throws(() => c.at(4_095), RangeError);
  for (let i = 0; i < 5_000; i++) c.push(-i - 2);
  assert.equal(c.at(4_094), model[4_094]);
  assert.equal(c.at(4_095), -2);
  assert.equal(c.at(4_096), -3);
  assert.equal(c.at(9_094), -5_001);
  c.truncate(0);
  assert.equal(c.length, 0);
  c.push(7);
  assert.equal(c.at(0), 7);
});

test('NumberColumn refuses slots outside it', () => {
  const c = columnOf(3);
  assert.equal(c.at(0), 3);
  assert.throws(() => c.at(1), RangeError);
  assert.throws(() => c.at(-1), RangeError);
  assert.throws(() => c.truncate(2), RangeError);
});

test('NumberColumn.tailFrom copies slots [k, length) across block edges; set and addToNonNegative change only the copy', () => {
  const c = new NumberColumn();
  const value = (i: number): number => (i % 3 === 0 ? -1 : i % 11 === 0 ? -2 : i * 2 ** 32 + (i % 1000));
  for (let i = 0; i < 13_000; i++) c.push(value(i));
  // Starts inside a block, at a block's first slot, at the end, and at 0.
  for (const k of [4_090, 4_096, 8_191, 12_999, 13_000, 0]) {
    const t = c.tailFrom(k);
    assert.equal(t.length, 13_000 - k);
    for (let i = k; i < 13_000; i += 1) assert.equal(t.at(i - k), value(i), `tailFrom(${k}) slot ${i - k}`);
    t.push(42);
    assert.equal(t.at(13_000 - k), 42);
  }
  const t = c.tailFrom(5_000);
  t.set(0, -1);
  t.addToNonNegative(-(3 * 2 ** 32));
  assert.equal(t.at(0), -1);
  for (let i = 5_001; i < 13_000; i++) {
    const v = value(i);
    assert.equal(t.at(i - 5_000), v >= 0 ? v - 3 * 2 ** 32 : v, `slot ${i - 5_000}`);
    assert.equal(c.at(i), v, 'the source column is unchanged');
  }
  assert.throws(() => c.tailFrom(13_001), RangeError);
  assert.throws(() => c.tailFrom(-1), RangeError);
  assert.throws(() => t.set(8_000, 1), RangeError);
});
