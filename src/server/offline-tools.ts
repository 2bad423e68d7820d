/**
 * What concordutl does to a stopped member's data dir (etcdutl's offline commands): HashKV
 * of the backend, defrag of the backend file, and the WAL's entries decoded
 * (etcd-dump-logs). The member must be stopped: LMDB would let both open the file, but the
 * tools assume nothing changes it meanwhile.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Backend, backendPath } from '../storage/index.js';
import { MvccStore, type HashKVResult } from '../mvcc/index.js';
import { ConfChangeType, EntryType, Metadata, decodeConfChange, type Entry, type HardState, type Snapshot } from '../proto/index.js';
import { readLog } from './etcd-data-dir.js';
import { decodeEntryRequest } from './request-codec.js';

function openBackend(dataDir: string): Backend {
  const path = backendPath(dataDir);
  if (!existsSync(path)) throw new Error(`no Concord backend at ${path}`);
  return Backend.open({ path });
}

/** HashKV at `rev` (0: the current revision) of a stopped member's backend, as the API computes it. */
export async function hashKvOfDataDir(dataDir: string, rev: number): Promise<HashKVResult> {
  const store = MvccStore.open({ backend: openBackend(dataDir) });
  try {
    return store.hashKV(rev);
  } finally {
    await store.close();
  }
}

/** Defragments a stopped member's backend file; returns its size before and after. */
export async function defragDataDir(dataDir: string): Promise<{ before: number; after: number }> {
  const backend = openBackend(dataDir);
  try {
    const before = backend.size();
    await backend.defrag();
    return { before, after: backend.size() };
  } finally {
    await backend.close();
  }
}

/** A data dir's raft log as etcd-dump-logs reads it: the snapshot it starts from, the WAL's metadata, hard state and entries. */
export async function readWalForDump(dataDir: string, walDir?: string): Promise<{ snapshot: Snapshot | undefined; nodeId: bigint; clusterId: bigint; hardState: HardState; entries: Entry[] }> {
  const { snapshot, metadata, hardState, entries } = await readLog(walDir ?? join(dataDir, 'member', 'wal'), join(dataDir, 'member', 'snap'));
  const meta = Metadata.decode(metadata);
  return { snapshot, nodeId: meta.NodeID ?? 0n, clusterId: meta.ClusterID ?? 0n, hardState, entries };
}

/** One decoded entry: `kind` is etcd-dump-logs' entry type name (ConfigChange, Request, IRRPut, ...). */
export interface DumpedEntry { type: 'conf' | 'norm'; kind: string; text: string }

/** etcd-dump-logs' names for the requests a normal entry carries. */
const dumpKinds: Record<string, string> = {
  put: 'IRRPut', range: 'IRRRange', deleteRange: 'IRRDeleteRange', txn: 'IRRTxn', compaction: 'IRRCompaction',
  leaseGrant: 'IRRLeaseGrant', leaseRevoke: 'IRRLeaseRevoke', leaseCheckpoint: 'IRRLeaseCheckpoint',
  alarm: 'IRRAlarm', auth: 'IRRAuth', v2: 'Request', unsupported: 'InternalRaftRequest',
};

/** One entry decoded for a human: its type, the request kind, the request as text. */
export function describeEntry(e: Entry): DumpedEntry {
  const data = e.data ?? new Uint8Array(0);
  if (e.type === EntryType.EntryConfChange) {
    const cc = decodeConfChange(data);
    return { type: 'conf', kind: 'ConfigChange', text: `method=${ConfChangeType[cc.type]} id=${cc.nodeId.toString(16)}` };
  }
  if (e.type !== EntryType.EntryNormal) return { type: 'conf', kind: 'ConfigChangeV2', text: Buffer.from(data).toString('hex') };
  if (data.length === 0) return { type: 'norm', kind: 'Empty', text: '' };
  try {
    const { id, request } = decodeEntryRequest(data);
    const body = request.kind === 'unsupported' ? request.name : JSON.stringify('req' in request ? request.req : request, printable);
    return { type: 'norm', kind: dumpKinds[request.kind] ?? request.kind, text: `${request.kind} id=${id.toString(16)} ${body}` };
  } catch (err) {
    return { type: 'norm', kind: 'Undecodable', text: `${(err as Error).message}: ${Buffer.from(data).toString('hex')}` };
  }
}

/** JSON.stringify's replacer: bytes as text when printable, else base64; 64-bit ids as decimals. */
function printable(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array || (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer')) {
    const b = v instanceof Uint8Array ? Buffer.from(v) : Buffer.from((v as { data: number[] }).data);
    return /^[\x20-\x7e]*$/.test(b.toString('latin1')) ? b.toString('latin1') : `base64:${b.toString('base64')}`;
  }
  return v;
}
