/**
 * The benchmarks' `K=V,K=V` option (an environment for a server or a variant): each pair split
 * at its first `=`, so a value may hold one (`CONCORD_NODE_ARGS=--interrupt-budget=4224`).
 */
export function parseEnvList(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`expected K=V, got "${pair}"`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
