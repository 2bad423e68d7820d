#!/usr/bin/env node
// Entry point for `concord`; the program lives in src/cli/ (compiled to dist/). It is called
// here, not run on import, so every way of starting the bin (npx, .bin symlinks) works. The
// V8 heap settings go first: loading the program's modules already sizes the young generation.
import { preferSmallHeap } from '../dist/src/cli/small-heap.js';
preferSmallHeap();
const { main } = await import('../dist/src/cli/concord.js');
void main();
