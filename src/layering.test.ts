// Keeps the house standing: every import in src/ must follow docs/architecture.md's layer
// table (arrows point down it), folders must not import one another in a cycle, and an
// import into another folder must go through that folder's entry module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root, from dist/src/layering.test.js or src/layering.test.ts. */
const root = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!readdirSync(dir).includes('package.json')) dir = dirname(dir);
  return dir;
})();
const srcDir = join(root, 'src');

/** Imported by any layer (docs/architecture.md: "every folder may also import the leaves"). */
const leaves = new Set(['errors', 'log', 'version.ts', 'testkit', 'metrics']);

interface Layer {
  name: string;
  entries: string[];
  mayImport: Set<string>;
}

/** Rows of the "## Layers" table: | `folder/` | entries | may import | job |. */
function readLayerTable(markdown: string): Map<string, Layer> {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Layers'));
  assert.ok(section, 'docs/architecture.md has a "## Layers" section');
  const layers = new Map<string, Layer>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length < 4 || !cells[0]!.startsWith('`')) continue;
    const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\/$/, ''));
    const name = ticked(cells[0]!)[0]!;
    layers.set(name, { name, entries: ticked(cells[1]!), mayImport: new Set(ticked(cells[2]!)) });
  }
  return layers;
}

interface Import {
  from: string; // file, relative to src/
  to: string; // resolved file, relative to src/
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return sourceFiles(p);
    return d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every relative import (static, dynamic, type-only, re-export) of every file under src/. */
function srcImports(): Import[] {
  const out: Import[] = [];
  for (const file of sourceFiles(srcDir)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const f of info.importedFiles) {
      if (!f.fileName.startsWith('.')) continue;
      const target = resolve(dirname(file), f.fileName).replace(/\.js$/, '.ts');
      out.push({ from: relative(srcDir, file), to: relative(srcDir, target) });
    }
  }
  return out;
}

/** The layer a src/-relative path belongs to: its top folder, or the file itself at the top. */
function layerOf(path: string): string {
  return path.split(sep)[0]!;
}

function violations(imports: Import[], layers: Map<string, Layer>): string[] {
  const found: string[] = [];
  for (const { from, to } of imports) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (to.startsWith('..')) { found.push(`${from} imports ${to}, outside src/`); continue; }
    if (a === b) continue;
    if (a.endsWith('.test.ts')) continue; // this test itself, at the top of src/
    const la = layers.get(a);
    const lb = layers.get(b);
    if (!la) { found.push(`${from}: folder ${a} is not in the layer table`); continue; }
    if (!lb) { found.push(`${from} imports ${to}: ${b} is not in the layer table`); continue; }
    if (!leaves.has(b) && !la.mayImport.has(b)) found.push(`${from} imports ${to}: ${a} may not import ${b} (arrow up the layer table)`);
    const entry = to.split(sep).slice(1).join('/') || to;
    if (!lb.entries.includes(entry)) found.push(`${from} imports ${to}: bypasses ${b}'s entry module (${lb.entries.join(', ')})`);
  }
  return found;
}

/** Folder-level cycles, each as a path a -> b -> ... -> a. */
function folderCycles(imports: Import[]): string[] {
  const edges = new Map<string, Set<string>>();
  for (const { from, to } of imports) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a === b || a.endsWith('.test.ts')) continue;
    if (!edges.has(a)) edges.set(a, new Set());
    edges.get(a)!.add(b);
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m].join(' -> '));
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n);
  return cycles;
}

const table = readLayerTable(readFileSync(join(root, 'docs', 'architecture.md'), 'utf8'));

test('every import in src/ points down the layer table and goes through the entry module', () => {
  const imports = srcImports();
  assert.ok(imports.length > 100, `found the imports (${imports.length})`);
  assert.deepEqual(violations(imports, table), []);
});

test('no cycle between folders of src/', () => {
  assert.deepEqual(folderCycles(srcImports()), []);
});

test('the checker catches an upward arrow, a bypassed entry module and a cycle', () => {
  const bad: Import[] = [
    { from: join('mvcc', 'store.ts'), to: join('server', 'index.ts') },
    { from: join('server', 'member.ts'), to: join('proto', 'gen', 'etcdserverpb', 'rpc.ts') },
    { from: join('api', 'services.ts'), to: join('server', 'wait.ts') },
    { from: join('raft', 'raft.ts'), to: join('errors', 'index.ts') },
  ];
  const found = violations(bad, table);
  assert.equal(found.length, 3, found.join('\n'));
  assert.match(found[0]!, /mvcc may not import server/);
  assert.match(found[1]!, /bypasses proto's entry module/);
  assert.match(found[2]!, /bypasses server's entry module/);
  assert.deepEqual(folderCycles([
    { from: join('api', 'a.ts'), to: join('server', 'index.ts') },
    { from: join('server', 'b.ts'), to: join('api', 'index.ts') },
  ]), ['api -> server -> api']);
});
