/**
 * Raised alarms (NOSPACE, CORRUPT), per member. Alarms change only by applying raft entries,
 * so every member agrees; they are persisted through the `persist` callback (the backend's
 * alarm records) and reloaded on start.
 */
import { AlarmType, AlarmMember } from '../proto/index.js';

export class AlarmSet {
  /** member id -> alarm types raised for it */
  private readonly raised = new Map<bigint, Set<AlarmType>>();

  constructor(initial: Iterable<AlarmMember> = []) {
    for (const a of initial) this.add(a.memberID, a.alarm);
  }

  /** Adds; returns true if it was not raised before. */
  add(memberId: bigint, alarm: AlarmType): boolean {
    let s = this.raised.get(memberId);
    if (!s) this.raised.set(memberId, (s = new Set()));
    if (s.has(alarm)) return false;
    s.add(alarm);
    return true;
  }

  /** Becomes exactly `alarms` (a leader's snapshot replaced the state machine). */
  replaceAll(alarms: Iterable<AlarmMember>): void {
    this.raised.clear();
    for (const a of alarms) this.add(a.memberID, a.alarm);
  }

  /** Removes; returns true if it was raised. */
  remove(memberId: bigint, alarm: AlarmType): boolean {
    const s = this.raised.get(memberId);
    if (!s || !s.delete(alarm)) return false;
    if (s.size === 0) this.raised.delete(memberId);
    return true;
  }

  has(alarm: AlarmType): boolean {
    if (this.raised.size === 0) return false; // every put asks: no iterator when none is raised
    for (const s of this.raised.values()) if (s.has(alarm)) return true;
    return false;
  }

  get(alarm: AlarmType): AlarmMember[] {
    const out: AlarmMember[] = [];
    for (const [memberID, s] of this.raised) {
      for (const a of s) if (alarm === AlarmType.NONE || a === alarm) out.push({ memberID, alarm: a });
    }
    return out.sort((x, y) => (x.memberID < y.memberID ? -1 : x.memberID > y.memberID ? 1 : x.alarm - y.alarm));
  }

  get empty(): boolean {
    return this.raised.size === 0;
  }
}

export function alarmName(a: AlarmType): string {
  return a === AlarmType.NOSPACE ? 'NOSPACE' : a === AlarmType.CORRUPT ? 'CORRUPT' : 'NONE';
}
