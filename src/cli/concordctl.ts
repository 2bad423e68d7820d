/**
 * `concordctl` is named in package.json so installs put it on PATH, but the program itself comes
 * with the CLI issue. Until then it says so plainly instead of failing with a missing module.
 * bin/concordctl.js calls main(); importing the module runs nothing.
 */
export function main(): void {
  process.stderr.write('concordctl: not available in this version of Concord yet; use etcdctl (ETCDCTL_API=3), which works against Concord unchanged\n');
  process.exitCode = 2;
}
