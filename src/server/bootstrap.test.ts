import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapIdentity } from './bootstrap.js';
import { bootstrapIds } from './ids.js';
import type { ServerConfig } from './config.js';

function cfg(name: string, cluster: Record<string, string[]>, advertise: string[]): ServerConfig {
  return {
    name,
    initialCluster: new Map(Object.entries(cluster).map(([n, us]) => [n, us.map((u) => new URL(u))])),
    initialAdvertisePeerUrls: advertise.map((u) => new URL(u)),
    initialClusterToken: 'etcd-cluster',
  } as ServerConfig;
}

test('a new member takes the ids etcd derives and lists every initial member', () => {
  const c = cfg('b', { a: ['http://127.0.0.1:2380'], b: ['http://127.0.0.1:2390'] }, ['http://127.0.0.1:2390']);
  const boot = bootstrapIdentity(c);
  const ids = bootstrapIds(new Map([['a', ['http://127.0.0.1:2380']], ['b', ['http://127.0.0.1:2390']]]), 'etcd-cluster');
  assert.equal(boot.memberId, ids.members.get('b'));
  assert.equal(boot.clusterId, ids.clusterId);
  assert.deepEqual(boot.members.map((m) => m.peerURLs), [['http://127.0.0.1:2380'], ['http://127.0.0.1:2390']]);
});

test('bootstrap refuses a name or advertise URL the initial cluster lacks, in etcd\'s words', () => {
  assert.throws(() => bootstrapIdentity(cfg('x', { e: ['http://127.0.0.1:23992'] }, ['http://127.0.0.1:23992'])),
    { message: 'couldn\'t find local name "x" in the initial cluster configuration' });
  // Real etcd 3.4.23, same flags: the message below, word for word.
  assert.throws(() => bootstrapIdentity(cfg('e', { e: ['http://127.0.0.1:23992'] }, ['http://127.0.0.1:23991'])),
    { message: '--initial-cluster has e=http://127.0.0.1:23992 but missing from --initial-advertise-peer-urls=http://127.0.0.1:23991 (resolved urls: "http://127.0.0.1:23991" != "http://127.0.0.1:23992")' });
  assert.throws(() => bootstrapIdentity(cfg('e', { e: ['http://127.0.0.1:23992'] }, ['http://127.0.0.1:23992', 'http://127.0.0.1:23993'])),
    { message: '--initial-advertise-peer-urls has http://127.0.0.1:23993 but missing from --initial-cluster=e=http://127.0.0.1:23992,e=http://127.0.0.1:23993' });
});
