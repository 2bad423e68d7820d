import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb as pb } from '../../proto/index.js';
import { BadJsonError, messageFromJson, messageToJson } from './json.js';

test('responses: jsonpb names (snake_case, etcd\'s camelCase fields kept), int64 as strings, uint32 hash as a number', () => {
  const status = pb.StatusResponse.fromPartial({
    header: { clusterId: 1n, memberId: 2n, revision: 3, raftTerm: 4 }, version: '3.4.23', dbSize: 5, leader: 2n, raftIndex: 6, raftTerm: 4, raftAppliedIndex: 6, dbSizeInUse: 7,
  });
  assert.equal(messageToJson(pb.StatusResponse, status),
    '{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"version":"3.4.23","dbSize":"5","leader":"2","raftIndex":"6","raftTerm":"4","raftAppliedIndex":"6","dbSizeInUse":"7"}');
  assert.equal(messageToJson(pb.HashResponse, pb.HashResponse.fromPartial({ hash: 4294967295 })), '{"hash":4294967295}');
  const members = pb.MemberListResponse.fromPartial({ members: [{ ID: 10n, name: 'n', peerURLs: ['http://a'], clientURLs: [], isLearner: true }] });
  assert.equal(messageToJson(pb.MemberListResponse, members), '{"members":[{"ID":"10","name":"n","peerURLs":["http://a"],"isLearner":true}]}');
});

test('requests: both name styles, int64 as string or number, enums by name or number, unknown fields ignored', () => {
  const r = messageFromJson(pb.RangeRequest, '{"key":"Zm9v","range_end":"Zm9w","limit":"3","revision":4,"sortOrder":"DESCEND","sort_target":2,"nope":1}');
  assert.deepEqual([r.key.toString(), r.rangeEnd.toString(), r.limit, r.revision, r.sortOrder, r.sortTarget], ['foo', 'fop', 3, 4, 2, 2]);
  assert.deepEqual(messageFromJson(pb.RangeRequest, ''), pb.RangeRequest.fromPartial({}));
});

test('requests: hostile JSON is refused with a typed error before anything is encoded', () => {
  const bad = (body: string, re: RegExp) => assert.throws(() => messageFromJson(pb.RangeRequest, body), (e: unknown) => e instanceof BadJsonError && re.test((e as Error).message), body);
  bad('{bad', /JSON/);
  bad('[1]', /cannot unmarshal array/);
  bad('"x"', /cannot unmarshal string/);
  bad('null', /cannot unmarshal object/);
  bad('{"key":"!!"}', /illegal base64 data at input byte 0$/);
  bad('{"key":"Zm9v="}', /illegal base64 data at input byte 4$/);
  bad('{"key":"Zm9"}', /illegal base64 data at input byte 0$/);
  bad('{"key":"Zm9vYg=x"}', /illegal base64 data at input byte 6$/); // offsets as Go's decoder reports them (checked against etcd)
  assert.equal(messageFromJson(pb.RangeRequest, '{"key":"Zm9v\\nYmFy"}').key.toString(), 'foobar');
  bad('{"key":"Zm9vYg="}', /illegal base64 data at input byte 7$/);
  bad('{"key":"Zm9vY==="}', /illegal base64 data at input byte 5$/);
  bad('{"key":"Zm9vYg"}', /illegal base64 data at input byte 4$/);
  bad('{"key":"Zm 9v"}', /illegal base64 data at input byte 2$/);
  bad('{"key":5}', /^json: cannot unmarshal number into Go value of type \[\]uint8$/);
  bad('{"key":"Zm9v","limit":"x"}', /integer/);
  bad('{"key":"Zm9v","limit":1.5}', /integer/);
  assert.throws(() => messageFromJson(pb.MemberRemoveRequest, '{"ID":"x"}'), BadJsonError);
  // Nesting: Go's limit and message, and no recursion anywhere below it (10,000 deep is fine).
  const nest = (n: number) => '{"key":"Zm9v","x":' + '['.repeat(n) + ']'.repeat(n) + '}';
  bad(nest(200_000), /^invalid character '\[' exceeded max depth$/);
  assert.equal(messageFromJson(pb.RangeRequest, nest(9_999)).key.toString(), 'foo');
  bad('{"key":"Zm9v","s":"[[[[","x":' + '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000) + '}', /^invalid character '\{' exceeded max depth$/);
});

test('watch bodies: JSON objects split across chunks anywhere (inside strings, escapes) come out whole, in order', async () => {
  const { jsonObjects } = await import('./bidi.js');
  const { Readable } = await import('node:stream');
  const text = ' {"create_request":{"key":"Zm9v","x":"a\\"}{"}} \n{"cancel_request":{"watch_id":"1"}}{"progress_request":{}}';
  for (let cut = 1; cut < text.length; cut++) {
    const chunks = [text.slice(0, cut), text.slice(cut)].map((t) => Buffer.from(t));
    const got: unknown[] = [];
    for await (const v of jsonObjects(Readable.from(chunks) as never, 1 << 20)) got.push(v);
    assert.deepEqual(got, [{ create_request: { key: 'Zm9v', x: 'a"}{' } }, { cancel_request: { watch_id: '1' } }, { progress_request: {} }], `cut at ${cut}`);
  }
  const refuse = async (body: string, max: number) => {
    const it = jsonObjects(Readable.from([Buffer.from(body)]) as never, max);
    await assert.rejects(async () => { for await (const _ of it) { /* drain */ } }, BadJsonError);
  };
  await refuse('[1]', 100);
  await refuse('{"a":1} x', 100);
  await refuse('{"a":"' + 'x'.repeat(200), 100); // an object that never ends is bounded
  await refuse('{"a":1,}', 100);
  await refuse('{"a":' + '['.repeat(20_000), 1 << 20); // Go's nesting limit, before the object completes
});
