// Passwords the way etcdctl reads them: speakeasy's prompt (the prompt on stdout, terminal echo
// off through stty, one line of stdin, a newline after it) or, with --interactive=false, fmt's
// Scanf("%s") (the first word of stdin's first line).
import type { Io } from './io.js';

/** speakeasy.Ask: the prompt, then one line read with echo off. */
export async function askPassword(io: Io, prompt: string): Promise<string> {
  io.stdout(prompt);
  io.setEcho(false);
  try {
    const line = await io.readLine();
    io.stdout('\n');
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  } finally {
    io.setEcho(true);
  }
}

/** fmt.Scanf("%s", &s): spaces skipped, then the word up to the next white space ("" on an empty line). */
export async function scanWord(io: Io): Promise<string> {
  const line = await io.readLine();
  return /^[ \t\r]*([^ \t\r]*)/.exec(line)![1]!;
}
