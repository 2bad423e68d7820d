/**
 * `concordctl`: etcdctl v3's command line for Concord and etcd alike (the commands live in
 * ctl/). bin/concordctl.js calls main(); importing the module runs nothing.
 */
import { runCtl, type Io, type SnapshotTools } from '../ctl/index.js';
import { snapshotStatus } from '../snapshot/index.js';
import { restoreSnapshot } from '../backup/index.js';
import { createLogger, progressBar } from '../log/index.js';
import { parseEtcdUrls, parseUrlsMap } from './go-flags.js';

/** stdin as lines (complete ones only: a last line without "\n" is the end of input, as bufio's ReadString sees it). */
async function* stdinLines(): AsyncGenerator<string> {
  let pending = '';
  process.stdin.setEncoding('latin1');
  for await (const chunk of process.stdin) {
    pending += chunk as string;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      yield pending.slice(0, nl);
      pending = pending.slice(nl + 1);
    }
  }
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** snapshot status/restore for concordctl: concordutl's code (restore writes a Concord data dir). */
const snapshots: SnapshotTools = {
  status: snapshotStatus,
  async restore(c) {
    const initialCluster = new Map<string, URL[]>();
    for (const [name, urls] of parseUrlsMap(c.initialCluster)) initialCluster.set(name, urls.map((u) => new URL(u.text)));
    const bar = progressBar('restoring', process.stderr);
    try {
      await restoreSnapshot({
        snapshotPath: c.snapshotPath, name: c.name, dataDir: c.dataDir, ...(c.walDir !== '' ? { walDir: c.walDir } : {}),
        initialCluster, initialAdvertisePeerUrls: parseEtcdUrls(c.peerUrls).map((u) => new URL(u.text)),
        initialClusterToken: c.initialClusterToken, skipHashCheck: c.skipHashCheck, log: createLogger({ caller: false }),
        progress: (done, total) => bar.update(done, total),
      });
    } finally {
      bar.done();
    }
  },
};

const io: Io = {
  stdout: (s) => { process.stdout.write(s); },
  stderr: (s) => { process.stderr.write(s); },
  readStdin,
  stdinLines,
  snapshots,
  progress: (label) => progressBar(label, process.stderr),
};

export function main(): void {
  void runCtl(process.argv.slice(2), process.env, io).then((code) => {
    process.exitCode = code;
    // Open handles (keep-alive timers, gRPC channels) must not keep a finished command alive.
    process.stdout.write('', () => process.exit(code));
  });
}
