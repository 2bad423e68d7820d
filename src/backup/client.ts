// The two calls the continuous backup makes to a running member, over @grpc/grpc-js:
// Maintenance.Snapshot into a file, and Watch of every key from a revision.

import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { etcdserverpb, type Event } from '../proto/index.js';
import { fsyncDir } from './segments.js';
import path from 'node:path';

const ser = <T>(fns: { encode(m: T): { finish(): Uint8Array } }) => (m: T): Buffer => Buffer.from(fns.encode(m).finish());

export function connect(endpoint: string): grpc.Client {
  return new grpc.Client(endpoint.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
}

/** Streams the member's snapshot into `file` (written as `.part`, fsynced, renamed). */
export async function saveSnapshot(client: grpc.Client, file: string): Promise<void> {
  const part = `${file}.part`;
  const out = fs.openSync(part, 'w');
  try {
    const call = client.makeServerStreamRequest('/etcdserverpb.Maintenance/Snapshot', ser(etcdserverpb.SnapshotRequest),
      (d: Buffer) => etcdserverpb.SnapshotResponse.decode(d), {}, new grpc.Metadata());
    let last: etcdserverpb.SnapshotResponse | undefined;
    for await (const m of call as AsyncIterable<etcdserverpb.SnapshotResponse>) {
      fs.writeSync(out, m.blob);
      last = m;
    }
    if (!last || last.remainingBytes !== 0) throw new Error('snapshot stream ended early');
    fs.fsyncSync(out);
  } finally {
    fs.closeSync(out);
  }
  fs.renameSync(part, file);
  fsyncDir(path.dirname(file));
}

/** The watch was cancelled because `fromRevision` is compacted: events in between are gone. */
export class CompactedError extends Error {
  constructor(readonly compactRevision: number) {
    super(`required revision has been compacted (compact revision ${compactRevision})`);
  }
}

export interface WatchHandle {
  /** Settles when the stream ends: rejects with CompactedError, a stream error, or resolves on close(). */
  readonly ended: Promise<void>;
  close(): void;
}

/** Watches every key from `fromRevision`; `onEvents` gets each response's events (whole revisions). */
export function watchAll(client: grpc.Client, fromRevision: number, onEvents: (events: Event[]) => void): WatchHandle {
  const call = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', ser(etcdserverpb.WatchRequest),
    (d: Buffer) => etcdserverpb.WatchResponse.decode(d), new grpc.Metadata());
  let closing = false;
  const ended = new Promise<void>((resolve, reject) => {
    call.on('data', (r: etcdserverpb.WatchResponse) => {
      if (r.compactRevision > 0) { reject(new CompactedError(r.compactRevision)); call.cancel(); return; }
      if (r.canceled) { reject(new Error(`watch canceled: ${r.cancelReason}`)); call.cancel(); return; }
      if (r.events.length > 0) onEvents(r.events);
    });
    call.on('error', (e: Error) => (closing ? resolve() : reject(e)));
    call.on('end', () => (closing ? resolve() : reject(new Error('watch stream ended'))));
  });
  call.write(etcdserverpb.WatchRequest.fromPartial({
    createRequest: { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), startRevision: fromRevision },
  }));
  return { ended, close: () => { closing = true; call.cancel(); } };
}
