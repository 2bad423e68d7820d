/**
 * Automatic compaction (--auto-compaction-mode / --auto-compaction-retention), as etcd's
 * v3compactor does it:
 * - periodic: sample the revision every period/10 (at most hourly); once a whole period has
 *   passed since the last success, compact to the revision sampled one period ago.
 * - revision: every 5 minutes, compact to (current revision - retention) if it moved.
 * Compactions go through raft like a client's, so every member compacts at the same revision.
 */
import { CompactionRequest } from '../proto/index.js';
import { isEtcdError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { formatDuration } from '../log/index.js';
import type { MvccStore } from '../mvcc/index.js';
import type { ServerConfig } from './config.js';
import type { EtcdServer } from './etcd-server.js';

const revisionModeIntervalMs = 5 * 60 * 1000;
const hourMs = 60 * 60 * 1000;

export function startAutoCompaction(o: { config: ServerConfig; log: Logger; server: EtcdServer; store: MvccStore }): () => void {
  const { config, log, server, store } = o;
  const retention = config.autoCompactionRetention;
  if (!(retention > 0)) return () => undefined;

  const compact = async (rev: number, fields: Record<string, unknown>, kind: string): Promise<boolean> => {
    log.info(`starting auto ${kind} compaction`, { revision: rev, ...fields });
    const start = Date.now();
    try {
      await server.compact(CompactionRequest.fromPartial({ revision: rev }));
    } catch (e) {
      if (!isEtcdError(e, 'Compacted')) {
        log.warn(`failed auto ${kind} compaction`, { revision: rev, ...fields, error: String(e) });
        return false;
      }
    }
    log.info(`completed auto ${kind} compaction`, { revision: rev, ...fields, took: formatDuration(Date.now() - start) });
    return true;
  };

  let timer: NodeJS.Timeout;
  if (config.autoCompactionMode === 'revision') {
    let last = 0;
    const run = async () => {
      const rev = store.currentRevision - retention;
      if (rev > 0 && rev !== last && server.leader === server.memberId) {
        if (await compact(rev, { 'revision-compaction-retention': retention }, 'revision')) last = rev;
      }
    };
    timer = setInterval(() => void run(), revisionModeIntervalMs);
  } else {
    const periodMs = retention;
    const intervalMs = Math.min(periodMs / 10, hourMs);
    const retentions = Math.max(1, Math.round(periodMs / intervalMs));
    const revs: number[] = [];
    let lastSuccess = Date.now();
    let base = periodMs;
    const run = async () => {
      revs.push(store.currentRevision);
      if (revs.length > retentions + 1) revs.shift();
      if (Date.now() - lastSuccess < base || server.leader !== server.memberId) return;
      base = Math.min(periodMs, hourMs);
      const rev = revs[0]!;
      if (rev > 0 && (await compact(rev, { 'compact-period': formatDuration(periodMs) }, 'periodic'))) {
        lastSuccess = Date.now();
        revs.shift();
      }
    };
    timer = setInterval(() => void run(), intervalMs);
  }
  timer.unref();
  return () => clearInterval(timer);
}
