import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proposeTimeout, type TimeoutView } from './propose-timeout.js';

// Monotonic and wall clocks 1,000,000 ms apart; a 1 s election timeout; the leader elected at 50,000.
const view = (o: Partial<TimeoutView> & { active?: Record<string, number> }): TimeoutView => ({
  self: 1n, leader: 1n, memberIds: [1n, 2n, 3n], leaderElectedAtMs: 50_000, electionTimeoutMs: 1000,
  wallOffsetMs: 1_000_000, activeSince: (id) => o.active?.[id.toString()], ...o,
});
const wall = (mono: number) => mono + 1_000_000;

test('started in the two election timeouts before the leader was elected: previous leader failure', () => {
  const v = view({ active: { 2: wall(0), 3: wall(0) } });
  assert.equal(proposeTimeout(v, 48_001), 'TimeoutDueToLeaderFail');
  assert.equal(proposeTimeout(v, 49_999), 'TimeoutDueToLeaderFail');
  assert.equal(proposeTimeout(v, 48_000), 'Timeout', 'before the window');
  assert.equal(proposeTimeout(v, 50_001), 'Timeout', 'after the election');
});

test('a leader: connection lost unless a quorum (itself counted) was connected since before the proposal', () => {
  assert.equal(proposeTimeout(view({ active: { 2: wall(10_000) } }), 60_000), 'Timeout', '2 of 3');
  assert.equal(proposeTimeout(view({ active: {} }), 60_000), 'TimeoutDueToConnectionLost', 'itself alone');
  assert.equal(proposeTimeout(view({ active: { 2: wall(61_000), 3: wall(61_000) } }), 60_000), 'TimeoutDueToConnectionLost',
    'both reconnected after the proposal started');
  assert.equal(proposeTimeout(view({ memberIds: [1n], active: {} }), 60_000), 'Timeout', 'a lone member is its own quorum');
});

test('a follower: connection lost when its link to the leader is down or came up after the proposal; no leader: timed out', () => {
  assert.equal(proposeTimeout(view({ self: 2n, leader: 1n, active: { 1: wall(10_000) } }), 60_000), 'Timeout');
  assert.equal(proposeTimeout(view({ self: 2n, leader: 1n, active: { 1: wall(60_500) } }), 60_000), 'TimeoutDueToConnectionLost');
  assert.equal(proposeTimeout(view({ self: 2n, leader: 1n, active: {} }), 60_000), 'TimeoutDueToConnectionLost');
  assert.equal(proposeTimeout(view({ self: 2n, leader: 0n, active: {} }), 60_000), 'Timeout');
});
