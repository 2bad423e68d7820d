import { test } from 'node:test';
import assert from 'node:assert/strict';
import { longestConnected } from './leader-transfer.js';

const activity = (since: Record<string, number>) => ({ activeSince: (id: bigint) => since[id.toString()] });

test('longestConnected: the voter connected earliest; unconnected voters (and the member itself) never', () => {
  assert.equal(longestConnected([1n, 2n, 3n], activity({ 2: 500, 3: 100 })), 3n);
  assert.equal(longestConnected([1n, 2n, 3n], activity({ 2: 100, 3: 500 })), 2n);
  // Ties: the first listed, as etcd's loop keeps the first of equal times.
  assert.equal(longestConnected([1n, 3n, 2n], activity({ 2: 100, 3: 100 })), 3n);
  assert.equal(longestConnected([1n, 2n, 3n], activity({})), undefined);
  assert.equal(longestConnected([], activity({ 2: 1 })), undefined);
});
