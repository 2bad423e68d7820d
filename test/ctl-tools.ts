// Running etcdctl or concordctl as a test step: the environment carries no ETCDCTL_* but what
// the caller sets; output is read as latin1 (byte for byte); the process is tracked and killed
// after 30 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { track, REPO_ROOT, type CmdResult } from './harness.js';

export type Tool = 'etcdctl' | 'concordctl';

export interface ToolRunOptions { cwd: string; env?: Record<string, string>; stdin?: string }

/** Starts the tool (stdout/stderr piped; stdin piped only when `stdin` is given). */
export function spawnTool(tool: Tool, args: string[], opts: ToolRunOptions): ChildProcess {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_') && v !== undefined) env[k] = v;
  env.ETCDCTL_API = '3';
  Object.assign(env, opts.env ?? {});
  const [cmd, argv] = tool === 'etcdctl' ? ['etcdctl', args] : [process.execPath, [join(REPO_ROOT, 'bin', 'concordctl.js'), ...args]];
  const child = spawn(cmd, argv, { env, cwd: opts.cwd, stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  track(child);
  return child;
}

/** Runs the tool to its end. */
export function runTool(tool: Tool, args: string[], opts: ToolRunOptions): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawnTool(tool, args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('latin1').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('latin1').on('data', (d: string) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
    if (child.stdin) { child.stdin.on('error', () => {}); child.stdin.end(opts.stdin); }
  });
}
