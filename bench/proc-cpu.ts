// CPU time of a process from /proc (Linux): a cost that holds up on a loaded machine, where
// rates do not. Benchmarks read it around a measured window and divide by the requests.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime/stime (USER_HZ, 100 on Linux). */
const ticksPerSecond = 100;

/** User + system CPU time of process `pid` so far (all its threads), in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces: fields are counted after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * (1000 / ticksPerSecond); // utime, stime (fields 14, 15)
}
