/**
 * `concordctl`: etcdctl v3's command line for Concord and etcd alike (the commands live in
 * ctl/). bin/concordctl.js calls main(); importing the module runs nothing.
 */
import { spawnSync } from 'node:child_process';
import { runCtl, type Io, type SnapshotTools } from '../ctl/index.js';
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

/** A password line longer than this ends the command: stdin is read whole lines at a time. */
const MAX_LINE_BYTES = 64 * 1024;
let stdinChunks: AsyncIterator<Buffer> | undefined;
let unread = Buffer.alloc(0);
let stdinEnded = false;

/** One line of stdin (speakeasy's readline: up to "\n" or the end of input). */
async function readLine(): Promise<string> {
  stdinChunks ??= (process.stdin as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (;;) {
    const nl = unread.indexOf(10);
    const end = nl >= 0 ? nl : stdinEnded ? unread.length : -1;
    if (end >= 0) {
      const line = unread.subarray(0, end).toString('utf8');
      unread = unread.subarray(Math.min(end + 1, unread.length));
      return line;
    }
    if (unread.length > MAX_LINE_BYTES) throw new Error(`a line of stdin is longer than ${MAX_LINE_BYTES} bytes`);
    const next = await stdinChunks.next();
    if (next.done) stdinEnded = true;
    else unread = Buffer.concat([unread, next.value]);
  }
}

/** speakeasy turns echo off and on by running stty on the same terminal (its complaints, off a terminal, included). */
function setEcho(on: boolean): void {
  spawnSync('stty', [on ? 'echo' : '-echo'], { stdio: 'inherit' });
}

/**
 * snapshot status/restore for concordctl: concordutl's code (restore writes a Concord data dir),
 * loaded only by those two commands: snapshot/ and backup/ (LMDB's native module among them)
 * are most of concordctl's start-up otherwise, as in concordutl.
 */
const snapshots: SnapshotTools = {
  async status(path) {
    const { snapshotStatus } = await import('../snapshot/index.js');
    return snapshotStatus(path);
  },
  async restore(c) {
    const { restoreSnapshot } = await import('../backup/index.js');
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
  readLine,
  setEcho,
  stdoutIsTerminal: process.stdout.isTTY === true,
  stderrIsTerminal: process.stderr.isTTY === true,
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
