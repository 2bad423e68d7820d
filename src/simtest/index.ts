/**
 * simtest/: test support, as etcd's rafttest: seeded simulations of whole clusters that run
 * the server's real Ready loop (server/raft-node.ts) over in-memory disks and a faulty
 * network. Nothing in production imports it.
 */
export { runSimulation, sizeForSeed } from './simulation.js';
export type { RunResult, SimulationOptions } from './simulation.js';
export { SimCluster, turn } from './cluster.js';
export type { NetworkOptions, Violation } from './cluster.js';
export { SimMember } from './sim-member.js';
