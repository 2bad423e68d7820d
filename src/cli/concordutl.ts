/**
 * `concordutl` is named in package.json so installs put it on PATH, but the program itself comes
 * with the CLI issue. Until then it says so plainly instead of failing with a missing module.
 * bin/concordutl.js calls main(); importing the module runs nothing.
 */
export function main(): void {
  process.stderr.write('concordutl: not available in this version of Concord yet; use etcdctl snapshot/etcdutl for offline work\n');
  process.exitCode = 2;
}
