import assert from 'node:assert/strict';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The dependency order of ARCHITECTURE.md, bottom floor first: a file imports only from its own
// folder or from a lower floor. Type-only imports count too: they are dependencies all the same.
const FLOORS: string[][] = [
  ['src/schemas/', 'src/errors.ts', 'src/format.ts'],
  ['src/config.ts', 'src/logger.ts', 'src/ts-worker.ts'],
  ['src/image/'],
  ['src/data/'],
  ['src/ml/'],
  ['src/store/', 'src/redis/'],
  ['src/queue/'],
  ['src/serving/'],
  ['src/worker/'],
  ['src/api/'],
  ['src/api.ts', 'src/worker.ts'],
  ['src/main.ts'],
  ['bench/', 'scripts/'],
];
/** Tools for the tests that the benchmarks use too (starting processes, a small trained model). */
const TEST_HELPERS = 'test/helpers/';

// The sources, also when this file runs compiled from .build/ (whose package.json links back to them).
const ROOT = dirname(realpathSync(fileURLToPath(new URL('../../package.json', import.meta.url))));
// Static and dynamic imports, and the entries of threads and child processes (siblingModule).
const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"](\.{1,2}\/[^'"]+)['"]|siblingModule\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(name) ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => normalize(join(dirname(file), m[1] ?? m[2] ?? m[3] ?? `${m[4]}.ts`)));
}

/** The floor of a path, and the folder (or root file) that is its room. */
function place(path: string): { floor: number; room: string } | undefined {
  for (const [floor, rooms] of FLOORS.entries()) {
    const room = rooms.find((r) => (r.endsWith('/') ? path.startsWith(r) : path === r));
    if (room) return { floor, room };
  }
  return undefined;
}

const files = ['src', 'bench', 'scripts'].flatMap(sourceFiles);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every source file has a place in the written dependency order', () => {
  assert.deepEqual(files.filter((f) => !place(f)), []);
});

test('imports run one way: down the floors, or within a folder', () => {
  const against: string[] = [];
  for (const [file, targets] of graph) {
    const from = place(file)!;
    for (const target of targets) {
      if (target.startsWith(TEST_HELPERS) && !file.startsWith('src/')) continue;
      const to = place(target);
      if (!to) against.push(`${file} → ${target} (outside the order)`);
      else if (to.room !== from.room && to.floor >= from.floor) against.push(`${file} → ${target}`);
    }
  }
  assert.deepEqual(against, []);
});

test('no file imports itself back through others (the file graph has no circle)', () => {
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].map((f) => relative('src', f)).join(' → '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file) ?? []) if (graph.has(next)) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(circles, []);
});
