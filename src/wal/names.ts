/**
 * File names, as etcd spells them: WAL segments `%016x-%016x.wal` (sequence, first raft
 * index the segment may hold) and snapshots `%016x-%016x.snap` (term, index). Fixed-width
 * lower-case hex, so sorting names sorts them numerically.
 */

import { readdir } from 'node:fs/promises';

const HEX16 = /^([0-9a-f]{16})-([0-9a-f]{16})\.(wal|snap)$/;

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function walName(seq: number, index: number): string {
  return `${hex16(seq)}-${hex16(index)}.wal`;
}

export function snapName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

/** `{seq, index}` of a segment name, or undefined if `name` is not one. */
export function parseWalName(name: string): { seq: number; index: number } | undefined {
  const m = HEX16.exec(name);
  if (m === null || m[3] !== 'wal') return undefined;
  return { seq: parseInt(m[1], 16), index: parseInt(m[2], 16) };
}

/** `{term, index}` of a snap file name, or undefined if `name` is not one. */
export function parseSnapName(name: string): { term: number; index: number } | undefined {
  const m = HEX16.exec(name);
  if (m === null || m[3] !== 'snap') return undefined;
  return { term: parseInt(m[1], 16), index: parseInt(m[2], 16) };
}

/** Segment names in `dir`, oldest first; other files (e.g. `0.tmp`) are ignored. */
export async function readWalNames(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.filter((n) => parseWalName(n) !== undefined).sort();
}

/**
 * Position in `names` (sorted) of the last segment whose first index is <= `index`: the
 * segment a reader starting after `index` must begin with. -1 if there is none.
 */
export function searchIndex(names: string[], index: number): number {
  for (let i = names.length - 1; i >= 0; i--) {
    if (parseWalName(names[i])!.index <= index) return i;
  }
  return -1;
}

/** True if the sequence numbers of `names` increase by exactly one each. */
export function isValidSeq(names: string[]): boolean {
  let last = -1;
  for (const n of names) {
    const { seq } = parseWalName(n)!;
    if (last !== -1 && seq !== last + 1) return false;
    last = seq;
  }
  return true;
}
