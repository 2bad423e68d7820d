#!/usr/bin/env node
// Entry point for `concordctl`; the program lives in src/cli/ (compiled to dist/).
import '../dist/src/cli/concordctl.js';
