// The Cluster service through real etcdctl, differential against real etcd on a one-member
// cluster: `member add` (learner and voter), `member list -w json/table`, `member update`,
// `member promote` and `member remove`, with good and bad inputs. Every step's exit code,
// output and error (with its gRPC code) must be the same on both, after the ids, the ports
// and the order of members (by id, which differ between runs) are normalized.
//
// On one member etcd's guards give: a second learner is refused (too many learners); a
// learner that never ran is not in sync; a voter may be added to a lone member (the restore
// case), after which another voter is refused (not enough started members) and a learner too
// (unhealthy: the new voter is not connected); the lone member cannot remove itself.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, type Server, type CmdResult } from './harness.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** Peer URLs of members that never run (nothing listens there). */
const url = (n: number): string => `http://127.0.0.1:${1100 + n}`;

interface Step { args: string[]; code: number | null; out: string; err: string }

/** Ids seen so far, by their hex form, with the name tests give them. */
class Ids {
  private readonly names = new Map<string, string>();
  name(hex: string, as: string): void { this.names.set(hex, as); }
  hexOf(as: string): string {
    for (const [h, n] of this.names) if (n === as) return h;
    throw new Error(`no id named ${as}`);
  }
  /** Replaces every known id (hex and decimal) with its name. */
  replace(text: string): string {
    for (const [hex, n] of this.names) {
      text = text.replaceAll(BigInt('0x' + hex).toString(), `"<${n}>"`).replaceAll(hex, `<${n}>`);
    }
    return text;
  }
}

function normalizeOutput(s: Server, ids: Ids, text: string): string {
  let t = ids.replace(text).replaceAll(s.peerUrl, '<PEER>').replaceAll(s.endpoint, '<CLIENT>');
  // Widths follow the ids' lengths (%16x padding, table columns): keep the words, not the padding.
  t = t.replace(/^(Member) +(<[^>]+>) (added to cluster|updated in cluster|removed from cluster) +/m, '$1 $2 $3 ')
    .split('\n').map((l) => (/^[|+]/.test(l) ? l.replace(/ {2,}/g, ' ').replace(/-{2,}/g, '-') : l)).join('\n');
  // Members come ordered by id; ids differ between runs, so order what lists them.
  t = t.replace(/^(ETCD_INITIAL_CLUSTER=")([^"]*)"/m, (_m, pre: string, list: string) => `${pre}${list.split(',').sort().join(',')}"`);
  const lines = t.split('\n');
  const rows = lines.filter((l) => /^\| </.test(l));
  if (rows.length > 1) {
    const sorted = [...rows].sort();
    let i = 0;
    t = lines.map((l) => (/^\| </.test(l) ? sorted[i++]! : l)).join('\n');
  }
  if (t.startsWith('{')) {
    const o = JSON.parse(t) as { members?: Array<{ peerURLs?: string[] }> };
    o.members?.sort((a, b) => String(a.peerURLs).localeCompare(String(b.peerURLs)));
    t = JSON.stringify(o);
  }
  return t;
}

/** The part of etcdctl's stderr that is the server's: the gRPC error and etcdctl's Error line. */
function errorOf(r: CmdResult): string {
  const rpc = /"error":"(rpc error: code = [^"]*)"/.exec(r.stderr)?.[1] ?? '';
  const line = /^Error: .*$/m.exec(r.stderr)?.[0] ?? '';
  return `${rpc} | ${line}`;
}

async function runScript(s: Server): Promise<Step[]> {
  const ids = new Ids();
  const steps: Step[] = [];
  const run = async (...args: string[]): Promise<CmdResult> => {
    const r = await s.etcdctl([...args.map((a) => a.replace(/<([\w:]+)>/g, (_m, n: string) => ids.hexOf(n))), '--command-timeout=5s']);
    // "Member <hex> added" names the new member after the member name given to etcdctl.
    // etcdctl prints ids with %16x: an id under 16 hex digits is padded with spaces.
    const added = /Member +([0-9a-f]+) added/.exec(r.stdout);
    if (added) ids.name(added[1]!, `member:${args[2]}`);
    steps.push({ args: args.map((a) => a.replaceAll(s.peerUrl, '<PEER>')), code: r.code, out: normalizeOutput(s, ids, r.stdout), err: ids.replace(errorOf(r)) });
    return r;
  };
  const first = await s.etcdctl(['member', 'list', '-w', 'json']);
  const header = /"cluster_id":(\d+),"member_id":(\d+)/.exec(first.stdout)!;
  ids.name(BigInt(header[1]!).toString(16), 'cluster');
  ids.name(BigInt(header[2]!).toString(16), 'self');

  await run('member', 'list', '-w', 'json');
  await run('member', 'add', 'l1', '--learner', `--peer-urls=${url(1)}`);
  await run('member', 'list', '-w', 'table');
  await run('member', 'list', '-w', 'json');
  await run('member', 'add', 'l2', '--learner', `--peer-urls=${url(2)}`);
  await run('member', 'promote', '<member:l1>');
  await run('member', 'promote', '<self>');
  await run('member', 'promote', '1234');
  await run('member', 'update', '<member:l1>', `--peer-urls=${s.peerUrl}`);
  await run('member', 'update', '<member:l1>', `--peer-urls=${url(3)}`);
  await run('member', 'update', '1234', `--peer-urls=${url(4)}`);
  await run('member', 'list', '-w', 'json');
  await run('member', 'remove', '1234');
  await run('member', 'remove', '<self>');
  await run('member', 'add', 'bad', '--peer-urls=not-a-url');
  await run('member', 'add', 'bad', `--peer-urls=${url(5)}/path`);
  await run('member', 'add', 'bad', '--peer-urls=ftp://127.0.0.1:1');
  await run('member', 'add', 'bad', '--peer-urls=http://127.0.0.1');
  await run('member', 'remove', '<member:l1>');
  await run('member', 'remove', '<member:l1>');
  await run('member', 'add', 'v1', `--peer-urls=${url(6)}`);
  await run('member', 'list', '-w', 'table');
  await run('member', 'add', 'v2', `--peer-urls=${url(7)}`);
  await run('member', 'add', 'l3', '--learner', `--peer-urls=${url(8)}`);
  await run('member', 'list', '-w', 'json');
  return steps;
}

describe('member commands through real etcdctl on one member', () => {
  const results = new Map<string, Step[]>();
  for (const target of selectedTargets()) {
    test(`${target}: add/list/update/promote/remove with etcd's guards`, async () => {
      const s = await startServer({ target });
      servers.push(s);
      const steps = await runScript(s);
      results.set(target, steps);
      // What holds on either target, whatever the other says.
      const at = (verb: string, n: number): Step => steps.filter((x) => x.args.slice(0, 2).join(' ') === `member ${verb}`)[n]!;
      assert.equal(at('add', 0).code, 0, at('add', 0).err);
      assert.match(at('add', 1).err, /code = FailedPrecondition desc = etcdserver: too many learner members in cluster/);
      assert.match(at('promote', 0).err, /code = FailedPrecondition desc = etcdserver: can only promote a learner member which is in sync with leader/);
      assert.match(at('remove', 1).err, /code = Unknown desc = etcdserver: re-configuration failed due to not enough started members/);
      assert.match(at('add', 7).err, /code = Unknown desc = etcdserver: re-configuration failed due to not enough started members/);
      assert.match(at('add', 8).err, /code = Unavailable desc = etcdserver: unhealthy cluster/);
    });
  }
  test('Concord answers every step as etcd does', (t) => {
    const etcd = results.get('etcd');
    const concord = results.get('concord');
    if (!etcd || !concord) return t.skip('needs both targets');
    assert.equal(concord.length, etcd.length);
    for (let i = 0; i < etcd.length; i++) {
      assert.deepEqual(concord[i], etcd[i], `step ${i}: etcdctl ${etcd[i]!.args.join(' ')}`);
    }
  });
});
