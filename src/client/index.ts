/**
 * client/: Concord's TypeScript client library for etcd v3 servers (Concord and etcd alike),
 * published as `concord/client`. A typed promise API over @grpc/grpc-js:
 *
 *   import { Client, Compare, Op } from 'concord/client';
 *   const client = new Client({ endpoints: ['http://127.0.0.1:2379'] });
 *   await client.kv.put('greeting', 'hello');
 *   const { kvs } = await client.kv.get('greeting');
 *   await client.kv.txn().if(Compare.version('greeting', '>', 0)).then(Op.delete('greeting')).commit();
 *   for await (const batch of client.watch.watch('jobs/', { prefix: true })) { ... }
 *   client.close();
 *
 * It imports proto/ and errors/ only: it is what users import, never the server.
 */
export { Client, type ClientOptions } from './client.js';
export type { CallOptions, ConnectionOptions, Credentials, TlsOptions } from './connection.js';
export { KVClient, Txn, Compare, Op } from './kv.js';
export type { GetOptions, PutOptions, DeleteOptions, IterateOptions, SortTarget, SortOrder, CompareOp } from './kv.js';
export { WatchClient, Watcher } from './watch.js';
export type { WatchOptions, WatchBatch } from './watch.js';
export { LeaseClient, KeepAlive } from './lease.js';
export { ClusterClient } from './cluster.js';
export { MaintenanceClient } from './maintenance.js';
export type { MemberCallOptions, SnapshotOptions } from './maintenance.js';
export { LockClient, ElectionClient } from './concurrency.js';
export type { HeldLock, Leadership, LeaseChoice } from './concurrency.js';
export { StmConflictError, type Stm, type TransactionOptions } from './stm.js';
export { AuthClient, type PermissionType } from './auth.js';
export { prefixEnd, toBuffer, type Bytes } from './bytes.js';
export {
  EtcdError, EtcdErrors, GrpcCode, GrpcStatusError, DeadlineExceededError, NoAvailableEndpointError,
  WatchCompactedError, WatchCanceledError, LeaseLostError, isUnimplemented,
} from './errors.js';
export type { ErrorKind, EtcdErrorClass } from './errors.js';
export type { KeyValue, Event } from '../proto/index.js';
export { etcdserverpb, authpb, Event_EventType } from '../proto/index.js';
