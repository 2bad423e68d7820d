/**
 * ctl/: concordctl, etcdctl v3's commands, flags, output formats, error wording and exit codes,
 * built on client/. `runCtl(argv, env, io)` runs one invocation and resolves with its exit code;
 * cli/concordctl.ts wires it to the process.
 */
export { runCtl } from './main.js';
export type { Io, SnapshotTools, SnapshotFileStatus, SnapshotRestoreConfig } from './io.js';
export { ExitCode, CtlExit } from './exit.js';
// cobra/pflag-style parsing, shared with `concord gateway start` (cli/concord-gateway.ts).
export { parseFlags, type FlagSpec } from './flags.js';
