// The continuous backup's files. A chain is a directory `chain-<rev>` holding `snapshot.db`
// (etcd's snapshot file as Maintenance.Snapshot streams it, store at revision <rev>) and the
// watch events after it in segments `seg-<first>-<last>.gz`, named by the revisions of their
// first and last event. A segment is gzip (whose CRC-32 and length trailer check it) of
// records: a 4-byte big-endian length, then an mvccpb.Event. Files appear only whole: written
// under `.part`, fsynced, renamed, and the directory fsynced.

import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Event } from '../proto/index.js';

const pad = (n: number): string => String(n).padStart(16, '0');

export const snapshotFileName = 'snapshot.db';
export const chainDirName = (revision: number): string => `chain-${pad(revision)}`;
export const segmentFileName = (first: number, last: number): string => `seg-${pad(first)}-${pad(last)}.gz`;

/** A segment or chain file that cannot be read (damaged, truncated, or not ours). */
export class BackupFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupFormatError';
  }
}

export interface Chain { readonly dir: string; readonly revision: number }
export interface Segment { readonly file: string; readonly first: number; readonly last: number }

/** The chains under `root` with a complete snapshot, oldest first. */
export function listChains(root: string): Chain[] {
  if (!fs.existsSync(root)) return [];
  const out: Chain[] = [];
  for (const name of fs.readdirSync(root)) {
    const m = /^chain-(\d{16})$/.exec(name);
    if (m && fs.existsSync(path.join(root, name, snapshotFileName))) out.push({ dir: path.join(root, name), revision: Number(m[1]) });
  }
  return out.sort((a, b) => a.revision - b.revision);
}

/** The chain's segments in revision order. */
export function listSegments(chainDir: string): Segment[] {
  const out: Segment[] = [];
  for (const name of fs.readdirSync(chainDir)) {
    const m = /^seg-(\d{16})-(\d{16})\.gz$/.exec(name);
    if (m) out.push({ file: path.join(chainDir, name), first: Number(m[1]), last: Number(m[2]) });
  }
  return out.sort((a, b) => a.first - b.first);
}

export function encodeSegment(events: readonly Event[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of events) {
    const body = Buffer.from(Event.encode(e).finish());
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    parts.push(len, body);
  }
  return gzipSync(Buffer.concat(parts));
}

/** Events of a segment file; a damaged file gives BackupFormatError naming it. */
export function readSegment(file: string, maxBytes: number): Event[] {
  let raw: Buffer;
  try {
    raw = gunzipSync(fs.readFileSync(file), { maxOutputLength: maxBytes });
  } catch (e) {
    throw new BackupFormatError(`segment ${file}: ${(e as Error).message}`);
  }
  const events: Event[] = [];
  for (let at = 0; at < raw.length;) {
    if (at + 4 > raw.length) throw new BackupFormatError(`segment ${file}: record length cut at byte ${at}`);
    const len = raw.readUInt32BE(at);
    if (at + 4 + len > raw.length) throw new BackupFormatError(`segment ${file}: record of ${len} bytes at byte ${at} overruns the segment`);
    try {
      events.push(Event.decode(raw.subarray(at + 4, at + 4 + len)));
    } catch (e) {
      throw new BackupFormatError(`segment ${file}: record at byte ${at}: ${(e as Error).message}`);
    }
    at += 4 + len;
  }
  return events;
}

/** Writes `data` to `file` so that a crash leaves either no file or the whole one. */
export function writeFileDurably(file: string, data: Uint8Array): void {
  const part = `${file}.part`;
  const fd = fs.openSync(part, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(part, file);
  fsyncDir(path.dirname(file));
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
