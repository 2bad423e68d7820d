/**
 * lease/: the lessor (etcd's lease package): leases, the keys attached to them, expiry and
 * checkpoint schedules, persisted in the backend's `lease` bucket. Pure bookkeeping: no
 * timers, no clock (time is passed in), no raft; the server drives it (server/lease-*.ts).
 */
export { Lessor, Lease, NotPrimaryError, leaseKey, maxLeaseTtlSeconds, leaseRevokeRate, defaultCheckpointIntervalMs, maxCheckpointBatch } from './lessor.js';
export type { LessorOptions } from './lessor.js';
export { DeadlineQueue } from './deadline-queue.js';
export type { Deadline } from './deadline-queue.js';
