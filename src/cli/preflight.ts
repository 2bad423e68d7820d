/**
 * What etcd checks before it writes anything, with etcd's messages:
 * - the data dir is a directory or does not exist yet (etcdmain identifyDataDirOrDie), and
 * - every client listener can be bound (embed.StartEtcd binds its listeners before it
 *   creates the data dir).
 * So a typo'd --data-dir or a port already in use fails at once and leaves no half-made
 * data dir or WAL behind. Errors are Go's texts, which scripts and operators match on.
 */
import { statSync } from 'node:fs';
import { createServer } from 'node:net';

/** A fatal start-up problem, as etcd logs it. */
export interface PreflightFailure {
  msg: string;
  fields: Record<string, string>;
}

/** Go's syscall.Errno texts for the errors a start-up check can meet. */
const goErrnoText: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'not a directory',
  ENOENT: 'no such file or directory',
  ELOOP: 'too many levels of symbolic links',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address',
};

export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e.code && goErrnoText[e.code]) ?? e.message;
}

/**
 * etcd's identifyDataDirOrDie: a missing dir is a new member; anything that is not a
 * directory it can list is fatal ("failed to list data directory").
 */
export function checkDataDir(dir: string): PreflightFailure | undefined {
  let error: string;
  try {
    if (statSync(dir).isDirectory()) return undefined;
    error = `readdirent ${dir}: not a directory`; // Go opens a file fine, then fails to list it
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    error = `open ${dir}: ${errnoText(err)}`;
  }
  return { msg: 'failed to list data directory', fields: { dir, error } };
}

/**
 * Binds and releases each listen URL's address, in order; the first that fails gives Go's
 * net.Listen error ("listen tcp 127.0.0.1:2379: bind: address already in use").
 */
export async function checkListeners(urls: readonly URL[]): Promise<string | undefined> {
  for (const url of urls) {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port);
    try {
      await bindAndRelease(host, port);
    } catch (err) {
      return `listen tcp ${url.host}: bind: ${errnoText(err)}`;
    }
  }
  return undefined;
}

function bindAndRelease(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

