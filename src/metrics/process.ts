/**
 * client_golang's process collector (process_*), read from /proc at scrape time as it does
 * on Linux. Where /proc is missing the family is left out rather than reported as 0.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { Registry } from './registry.js';

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A soft limit from /proc/self/limits ("Max open files  20000  20000  files"); unlimited = +Inf. */
function procLimit(name: string): number | undefined {
  const line = readProc('/proc/self/limits')?.split('\n').find((l) => l.startsWith(name));
  if (line === undefined) return undefined;
  const soft = line.slice(name.length).trim().split(/\s+/)[0];
  return soft === 'unlimited' ? Infinity : Number(soft);
}

/** The soft limit on open files (etcd's /debug/vars "file_descriptor_limit"). */
export function fdLimit(): number | undefined {
  return procLimit('Max open files');
}

function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/** Field n (1-based, as in proc(5)) of /proc/self/stat, counting after the command name. */
function statField(n: number): number | undefined {
  const stat = readProc('/proc/self/stat');
  if (stat === undefined) return undefined;
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[n - 3]);
}

export function registerProcessMetrics(registry: Registry): void {
  if (readProc('/proc/self/stat') === undefined) return;
  const rows = (v: number | undefined) => (v === undefined ? [] : [{ values: [], value: v }]);
  const add = (name: string, help: string, type: 'gauge' | 'counter', read: () => number | undefined): void =>
    registry.collectedRows(name, help, [], () => rows(read()), type);
  add('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  add('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', () => process.memoryUsage.rss());
  add('process_virtual_memory_bytes', 'Virtual memory size in bytes.', 'gauge', () => statField(23));
  add('process_virtual_memory_max_bytes', 'Maximum amount of virtual memory available in bytes.', 'gauge', () => {
    const v = procLimit('Max address space');
    return v === Infinity ? 18446744073709552000 : v; // Go reports unlimited as MaxUint64
  });
  add('process_open_fds', 'Number of open file descriptors.', 'gauge', openFds);
  add('process_max_fds', 'Maximum number of open file descriptors.', 'gauge', fdLimit);
  // etcd's own pair (pkg/runtime via etcdserver/metrics.go), beside client_golang's.
  add('os_fd_limit', 'The file descriptor limit.', 'gauge', fdLimit);
  add('os_fd_used', 'The number of used file descriptors.', 'gauge', openFds);
  const startSeconds = Date.now() / 1000 - process.uptime();
  add('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => Math.floor(startSeconds * 100) / 100);
}
