import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlarmMember, AlarmType } from '../proto/index.js';
import { alarmsOfRecord, alarmsRecord } from './member-records.js';

test('the alarm record reads back as written, a member id past 2^53 included; no record is no alarms', () => {
  const alarms = [
    AlarmMember.fromPartial({ memberID: 0xfedcba9876543210n, alarm: AlarmType.NOSPACE }),
    AlarmMember.fromPartial({ memberID: 1n, alarm: AlarmType.CORRUPT }),
  ];
  const record = alarmsRecord(alarms);
  assert.deepEqual(JSON.parse(record.toString('utf8')), [
    { memberID: '18364758544493064720', alarm: AlarmType.NOSPACE },
    { memberID: '1', alarm: AlarmType.CORRUPT },
  ]);
  assert.deepEqual(alarmsOfRecord(record), alarms);
  assert.deepEqual(alarmsOfRecord(undefined), []);
  assert.deepEqual(alarmsOfRecord(alarmsRecord([])), []);
});
