/** Errors the WAL and snapshotter throw. `code` is stable; messages follow etcd's wording. */

export type WalErrorCode =
  | 'Exist'
  | 'FileNotFound'
  | 'Corrupt'
  | 'MetadataConflict'
  | 'SnapshotMismatch'
  | 'SnapshotNotFound'
  | 'SliceOutOfRange'
  | 'Closed'
  | 'NotRead';

export class WalError extends Error {
  constructor(
    readonly code: WalErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WalError';
  }
}

/**
 * Damage before the tail of the log: a record that fails its CRC or does not parse, where a
 * torn write cannot explain it. The WAL refuses to open rather than drop acknowledged data.
 */
export class WalCorruptError extends WalError {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super('Corrupt', `wal: ${reason} in ${file} at offset ${offset}`);
    this.name = 'WalCorruptError';
  }
}
