import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashKVResponseJson, parseHashKVRequest } from './corrupt-check.js';

test('HashKVRequest JSON: Go unmarshalling of what a peer may send', () => {
  assert.equal(parseHashKVRequest('{"revision":12}'), 12);
  assert.equal(parseHashKVRequest('{}'), 0);
  assert.equal(parseHashKVRequest(''), 0);
  assert.equal(parseHashKVRequest('null'), 0);
  for (const bad of ['{', '[1]', '"x"', '{"revision":"12"}', '{"revision":1.5}', '{"revision":1e300}']) {
    assert.equal(parseHashKVRequest(bad), undefined, bad);
  }
});

test('HashKVResponse JSON as Go marshals it: omitempty fields, header with the revision only', () => {
  assert.equal(hashKVResponseJson({ hash: 7, revision: 21, compactRevision: -1 }), '{"header":{"revision":21},"hash":7,"compact_revision":-1}');
  assert.equal(hashKVResponseJson({ hash: 0, revision: 0, compactRevision: 0 }), '{"header":{}}');
});
