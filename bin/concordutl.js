#!/usr/bin/env node
// Entry point for `concordutl`; the program lives in src/cli/ (compiled to dist/). It is called
// here, not run on import, so every way of starting the bin (npx, .bin symlinks) works.
import { main } from '../dist/src/cli/concordutl.js';
main();
