import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const earlyTierUp = fileURLToPath(new URL('./early-tier-up.js', import.meta.url));

/**
 * Runs a node child that (optionally) applies preferEarlyTierUp, then calls a function created
 * afterwards (as the program's are) until V8 runs it as TurboFan code, and returns how many
 * calls that took. Compilation is synchronous in the child (--no-concurrent-recompilation), so
 * the count depends on the budget alone, not on a background thread's timing. TURBOFANNED is
 * V8 11.3's OptimizationStatus bit (Node 20); another V8 may number it otherwise, and then the
 * first test's "optimizes the function at all" fails rather than passing vacuously.
 */
function callsUntilTurboFan(nodeArgs: string[], apply: boolean): number {
  const script = `
    (async () => {
      if (${apply}) (await import(${JSON.stringify(earlyTierUp)})).preferEarlyTierUp();
      const sum = new Function('a', 'let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 3; return s;');
      const status = new Function('f', 'return %GetOptimizationStatus(f);');
      const TURBOFANNED = 1 << 6;
      const values = Array.from({ length: 20 }, (_, i) => i);
      let calls = 0;
      while (calls < 100000 && !(status(sum) & TURBOFANNED)) { sum(values); calls++; }
      console.log(calls);
    })();`;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', ...nodeArgs, '-e', script], { encoding: 'utf8' });
  return Number(out.trim());
}

test('concord sends a function to TurboFan after fewer calls than V8 does by default', () => {
  const byDefault = callsUntilTurboFan([], false);
  const early = callsUntilTurboFan([], true);
  assert.ok(byDefault > 0 && byDefault < 100000, `V8 optimizes the function at all (${byDefault} calls)`);
  assert.ok(early * 2 < byDefault, `${early} calls with concord's budget, ${byDefault} with V8's`);
});

test('an interrupt budget on node\'s command line wins over concord\'s setting', () => {
  const byDefault = callsUntilTurboFan([], false);
  assert.equal(callsUntilTurboFan(['--interrupt-budget=67584'], true), byDefault);
});
