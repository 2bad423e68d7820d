// The client: one Connection shared by the service clients.
import { Connection, type ConnectionOptions } from './connection.js';
import { KVClient } from './kv.js';
import { WatchClient } from './watch.js';
import { LeaseClient } from './lease.js';
import { ClusterClient } from './cluster.js';
import { MaintenanceClient } from './maintenance.js';
import { LockClient, ElectionClient } from './concurrency.js';
import { AuthClient } from './auth.js';
import { transaction, type Stm, type TransactionOptions } from './stm.js';

export type ClientOptions = ConnectionOptions;

export class Client {
  readonly connection: Connection;
  readonly kv: KVClient;
  readonly watch: WatchClient;
  readonly lease: LeaseClient;
  readonly cluster: ClusterClient;
  readonly maintenance: MaintenanceClient;
  readonly lock: LockClient;
  readonly election: ElectionClient;
  readonly auth: AuthClient;

  constructor(options: ClientOptions) {
    this.connection = new Connection(options);
    this.kv = new KVClient(this.connection);
    this.watch = new WatchClient(this.connection);
    this.lease = new LeaseClient(this.connection);
    this.cluster = new ClusterClient(this.connection);
    this.maintenance = new MaintenanceClient(this.connection);
    this.lock = new LockClient(this.connection, this.lease);
    this.election = new ElectionClient(this.connection, this.lease);
    this.auth = new AuthClient(this.connection);
  }

  /**
   * Runs fn as a serializable transaction (snapshot reads, buffered writes, retried on conflict):
   * `await client.transaction(async (tx) => tx.put('n', String(Number(await tx.get('n') ?? 0) + 1)))`.
   */
  transaction<T>(fn: (stm: Stm) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    return transaction(this.kv, fn, opts);
  }

  /** Stops keep-alives and closes every channel. */
  close(): void {
    this.lease.closeAll();
    this.connection.close();
  }
}
