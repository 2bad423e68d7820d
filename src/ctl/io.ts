// What concordctl's commands get from the program that runs them: its streams and terminal,
// and the offline snapshot tools (concordctl passes concordutl's, so ctl/ stays on client/
// alone). A leaf: the context, the password prompt and the commands all read it.
import type { Progress } from '../log/index.js';

/** etcd's snapshot.Status (its JSON names). */
export interface SnapshotFileStatus { hash: number; revision: number; totalKey: number; totalSize: number }

/** etcd's snapshot.RestoreConfig, as `snapshot restore`'s flags give it. */
export interface SnapshotRestoreConfig {
  snapshotPath: string;
  name: string;
  dataDir: string;
  walDir: string;
  peerUrls: string[];
  initialCluster: string;
  initialClusterToken: string;
  skipHashCheck: boolean;
}

/** The offline snapshot tools concordctl is given. */
export interface SnapshotTools {
  status(path: string): Promise<SnapshotFileStatus>;
  restore(config: SnapshotRestoreConfig): Promise<void>;
}

export interface Io {
  stdout(s: string | Uint8Array): void;
  stderr(s: string): void;
  /** All of stdin (for put without a value, txn). */
  readStdin(): Promise<string>;
  /** Lines of stdin as they arrive (interactive txn, watch -i). */
  stdinLines(): AsyncIterable<string>;
  /** One line of stdin without its "\n" (at the end of input what is left, then ""): passwords. */
  readLine(): Promise<string>;
  /** Turns the terminal's echo off and on (stty), around a password prompt. */
  setEcho(on: boolean): void;
  /** stdout / stderr are terminals (colors on stdout, progress bars on stderr). */
  stdoutIsTerminal?: boolean;
  stderrIsTerminal?: boolean;
  /** Offline snapshot status/restore, from the program running concordctl (absent: those commands fail). */
  snapshots?: SnapshotTools;
  /** A progress bar for long work (snapshot save): drawn on a terminal only; absent: none. */
  progress?: (label: string) => Progress;
}
