/**
 * Concord's own records of membership and alarms in the backend: one JSON record each, the
 * membership under bucket "members", the raised alarms under bucket "alarm". etcd's bbolt keeps
 * a key per member and per alarm instead; the etcd import (etcd-data-dir.ts) and export
 * (etcd-export.ts) translate. Written and read through this module only, so the member, the
 * import and the export cannot disagree on the format.
 */
import { AlarmMember } from '../proto/index.js';

export const membersKey = Buffer.from('members');
export const alarmsKey = Buffer.from('alarms');

/** The raised alarms as one JSON list (a member id as a decimal string: it is 64 bits). */
export function alarmsRecord(alarms: readonly AlarmMember[]): Buffer {
  return Buffer.from(JSON.stringify(alarms.map((x) => ({ memberID: x.memberID.toString(), alarm: x.alarm }))));
}

/** alarmsRecord read back; no record, no alarms. */
export function alarmsOfRecord(record: Buffer | undefined): AlarmMember[] {
  if (record === undefined) return [];
  const list = JSON.parse(record.toString('utf8')) as Array<{ memberID: string; alarm: number }>;
  return list.map((a) => AlarmMember.fromPartial({ memberID: BigInt(a.memberID), alarm: a.alarm }));
}
