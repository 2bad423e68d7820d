import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tabwrite } from './tabwriter.js';

// Expected layouts are etcdctl 3.4's (Go's text/tabwriter, tab width 8, padding 1, tab padded).
test('tabwrite: a column is padded with tabs to its widest cell plus one, at tab stops', () => {
  assert.equal(tabwrite('\thashkv\tPrints\n\thealth\tChecks\n'), '\thashkv\tPrints\n\thealth\tChecks\n');
  assert.equal(tabwrite('\tget\tGets\n\tlease keep-alive\tKeeps\n\tlease list\tList\n'),
    '\tget\t\t\tGets\n\tlease keep-alive\tKeeps\n\tlease list\t\tList\n');
});

test('tabwrite: a line without a cell in the column ends its block; the last cell takes no part', () => {
  const text = '  -h, --help[=false]\thelp for x\n\nGLOBAL:\n      --endpoints=[127.0.0.1:2379]\tgRPC endpoints\n      --hex[=false]\thex\n';
  assert.equal(tabwrite(text),
    '  -h, --help[=false]\thelp for x\n\nGLOBAL:\n      --endpoints=[127.0.0.1:2379]\tgRPC endpoints\n      --hex[=false]\t\t\thex\n');
  assert.equal(tabwrite('no tabs here\nnor here'), 'no tabs here\nnor here');
});
