// Where the benches run the servers they measure: each in a session of its own (setsid), as a
// service manager starts a daemon, unless `--same-session` is given. With the kernel's
// sched_autogroup (on here: /proc/sys/kernel/sched_autogroup_enabled), the processes of one
// session share the CPU as one group; a server spawned in its load generator's session
// competed with the generator thread by thread on two cores. bench/loop-stalls.ts, 4
// alternating pairs (session 23): the main thread's time waiting for a core 474/475/1,954/1,331
// ms -> 269/147/519/279 ms per 60k puts, the longest stall 23/17/78/59 -> 21/16/32/24 ms.
// etcd and Concord are started the same way either way.
export const serversInOwnSession = !process.argv.includes('--same-session');
