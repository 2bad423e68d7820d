/**
 * GET /debug/vars as etcd serves it (Go's expvar handler): one "key": value per line, keys
 * sorted. Concord publishes what it can report honestly: the command line, the open-files
 * limit and raft's status; Go's "memstats" has no Node counterpart and is left out.
 */
import { fdLimit } from '../metrics/index.js';

export function debugVarsBody(raftStatusJson: string): string {
  const vars: Array<[string, string]> = [['cmdline', JSON.stringify(process.argv.slice(1))]];
  const fds = fdLimit();
  if (fds !== undefined && Number.isFinite(fds)) vars.push(['file_descriptor_limit', String(fds)]);
  vars.push(['raft.status', raftStatusJson]);
  return '{\n' + vars.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(',\n') + '\n}\n';
}
