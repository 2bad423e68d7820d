/**
 * The versions Concord reports. Concord speaks etcd 3.4's API, so it reports etcd's version
 * where etcd does (`--version`, the "starting an etcd server" line, /version, Status): tools
 * parse "etcd Version: 3.4.x" and compare it. Concord's own version is added after.
 */
import { readFileSync } from 'node:fs';

/** The etcd server version Concord presents (version.Version in etcd). */
export { etcdServerVersion as etcdVersion } from '../version.js';
export { etcdClusterVersion } from '../version.js';
import { etcdServerVersion as etcdVersion } from '../version.js';

/** Concord's package version, read from package.json at run time (dist/src/cli -> root). */
export function concordVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Go's runtime.GOARCH for Node's process.arch. */
export function goArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[arch] ?? arch;
}

/**
 * `concord --version`. The first four lines are etcd's, in etcd's order and wording (scripts
 * grep "etcd Version:"); "Go Version" reports the Node.js runtime. Then Concord's own line.
 */
export function versionText(gitSha = process.env.CONCORD_GIT_SHA ?? 'Not provided'): string {
  return [
    `etcd Version: ${etcdVersion}`,
    `Git SHA: ${gitSha}`,
    `Go Version: node ${process.version}`,
    `Go OS/Arch: ${process.platform}/${goArch()}`,
    `Concord Version: ${concordVersion()}`,
    '',
  ].join('\n');
}
