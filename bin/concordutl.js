#!/usr/bin/env node
// Entry point for `concordutl`; the program lives in src/cli/ (compiled to dist/).
import '../dist/src/cli/concordutl.js';
