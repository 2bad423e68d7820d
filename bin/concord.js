#!/bin/sh
":" //; set -f; n=$(nproc 2>/dev/null) || n=2; [ "$n" -gt 1 ] && n=$((n - 1)); case ":${GLIBC_TUNABLES-}" in *:glibc.malloc.mmap_threshold=*) ;; *) GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.mmap_threshold=1048576"; export GLIBC_TUNABLES ;; esac; exec node --v8-pool-size="${CONCORD_V8_POOL_SIZE:-$n}" $CONCORD_NODE_ARGS "$0" "$@"
// Entry point for `concord`; the program lives in src/cli/ (compiled to dist/). It is called
// here, not run on import, so every way of starting the bin (npx, .bin symlinks) works.
//
// The two lines above are both shell and JavaScript. Run as a program (`concord`, npx, the
// .bin symlink, `bin/concord.js`), /bin/sh reads the second line (`":"` is its no-op command)
// and execs node on this same file with V8's worker pool one thread smaller than the CPUs this
// process may use (at least 1; CONCORD_V8_POOL_SIZE overrides it, CONCORD_NODE_ARGS adds node
// flags). Node then skips the first line (a hashbang) and reads the second as a string and a
// comment. Why (issue 14): Node's default is 4 V8 workers whatever the machine; on 2 cores the
// GC's concurrent marking and sweeping on them took the main thread's core in 4 ms scheduler
// ticks, and every request waits on the main thread (docs/architecture.md, "V8's worker pool"). It is a
// start-up flag, so it cannot be set from here: `node bin/concord.js` runs with Node's default.
//
// It also fixes glibc's mmap threshold at 1 MiB (GLIBC_TUNABLES; one already set there wins):
// every allocation of 1 MiB or more is then a mapping of its own, unmapped when freed. The raft
// log keeps its payloads in 1 MiB chunks (src/raft/payload-arena.ts), long-lived and dropped
// whole when the log is compacted. With glibc's default, the threshold rises to the size of
// any large block freed, the chunks land in the main heap, pin its top, and everything freed
// below them stays resident: 147 vs 124 MiB after loading 100k keys (bench mem, issue 14).
//
// The V8 heap and tier-up settings go first: loading the program's modules already sizes the
// young generation and gives every function its tier-up budget.
import { preferSmallHeap } from '../dist/src/cli/small-heap.js';
import { preferEarlyTierUp } from '../dist/src/cli/early-tier-up.js';
preferSmallHeap();
preferEarlyTierUp();
const { main } = await import('../dist/src/cli/concord.js');
void main();
