/**
 * bbolt/: bbolt's on-disk format (the file etcd keeps as member/snap/db and streams as a
 * snapshot), both ways. A leaf: imports nothing.
 *
 * - `planBoltFile`: a streaming writer (two passes over the source, pages emitted in file
 *   order, the size known up front, never the whole file in memory).
 * - `BoltReader`: a bounds-checked reader over any `ByteSource` (`bufferSource`,
 *   `fileSource`); a damaged file gives `BoltFormatError`, never a crash or a hang. `bucket`
 *   gives entries that stay valid, `scan` a cursor over transient pages (a whole file's walk
 *   without garbage per page).
 */
export { planBoltFile, planBoltFileAsync, BoltSourceChangedError } from './writer.js';
export type { BoltBucketSource, BoltFilePlan, BoltWriterOptions } from './writer.js';
export { BoltReader, BoltFormatError, bufferSource, fileSource, maxDepth } from './reader.js';
export type { BoltCheckAlong, BoltCursor, BoltEntry, ByteSource } from './reader.js';
export { defaultPageSize, fnv64a } from './format.js';
export type { Meta as BoltMeta } from './format.js';
