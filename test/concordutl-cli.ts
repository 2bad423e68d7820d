// Runs bin/concordutl.js (the built CLI) as a child process, as an operator would.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { track, REPO_ROOT, type CmdResult } from './harness.js';

export function concordutl(args: string[]): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'concordutl.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
