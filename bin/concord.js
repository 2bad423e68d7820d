#!/usr/bin/env node
// Entry point for `concord`; the program lives in src/cli/ (compiled to dist/).
import '../dist/src/cli/concord.js';
