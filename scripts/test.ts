/**
 * `npm test` and its groups, each its own script:
 *
 *   unit         no Redis, no training, no processes: pure functions and in-memory parts, in parallel
 *   integration  the API in-process against Redis, small trainings, the stores
 *   e2e          real API and worker processes, the whole path
 *   browser      the web page in Debian's chromium
 *
 * A test file's group follows from where it is (test/e2e/, test/browser/) and what it imports:
 * anything that reaches Redis, starts processes or trains makes it an integration test, so a unit
 * test cannot quietly grow slow. Before the groups that need it, the shared fixture model is
 * trained once (test/helpers/fixture-model.ts) into a temporary directory, removed at the end.
 *
 * The tests run compiled: `tsc -p tsconfig.test.json` type-checks the project (it is the typecheck,
 * with `tsc -p web` beside it) and writes JavaScript to .build/, incrementally. Under tsx every test
 * file, API, worker and training process spent ~3 s of CPU loading the service through the loader
 * hooks; compiled, the suite takes a third less time. .build/ links back to everything else the
 * files read beside them (web/, examples/, openapi/, README.md, package.json…). Stacks point into
 * .build/ (--enable-source-maps would map them back, for ~8 % more time: it parses the source maps
 * of every package loaded); a single file runs from source with `node --import tsx --test <file>`.
 *
 *   node --import tsx scripts/test.ts [all | unit | integration | e2e | browser] [--list]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.ts';
import { ensureRedis } from '../src/redis/private-server.ts';
import { buildFixture, FIXTURE_ENV } from '../test/helpers/fixture-model.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const GROUPS = ['unit', 'integration', 'e2e', 'browser'] as const;
type Group = (typeof GROUPS)[number];

/** Imports that make a test an integration test: Redis, BullMQ, processes, training, the fixture. */
const SLOW_IMPORTS = [
  /from 'ioredis'/,
  /from 'bullmq'/,
  /helpers\/(env|api|workers|processes|redis-server|fixture-model)\.ts'/,
  /src\/ml\/(train|data-parallel)\.ts'/,
  /src\/worker\/(train-job|finetune-job|start-worker)\.ts'/,
];
/** Test files run at once, per group: tests that wait on processes, locks and timers leave cores idle. */
const CONCURRENCY: Record<Group, number> = { unit: 2, integration: 3, e2e: 3, browser: 2 };

/**
 * The longest files of a group start first, so that the group does not end with one of them running
 * alone on a core the others have left.
 */
const LONGEST = [
  'test/e2e/model-family.test.ts',
  'test/e2e/worker-crash.test.ts',
  'test/e2e/many-jobs.test.ts',
  'test/e2e/train-and-predict.test.ts',
  'test/e2e/worker-shutdown.test.ts',
  'test/api/predict-real-world.test.ts',
  'test/api/model-jobs.test.ts',
  'test/ml/data-parallel.test.ts',
  'test/api/auth.test.ts',
];
const byLength = (a: string, b: string) => (LONGEST.indexOf(a) + 1 || Infinity) - (LONGEST.indexOf(b) + 1 || Infinity) || a.localeCompare(b);

function testFiles(dir = 'test'): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return name === 'helpers' || name === 'artifacts' ? [] : testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

export function groupOf(file: string): Group {
  if (file.startsWith('test/browser/')) return 'browser';
  if (file.startsWith('test/e2e/')) return 'e2e';
  const text = readFileSync(join(ROOT, file), 'utf8');
  return SLOW_IMPORTS.some((re) => re.test(text)) ? 'integration' : 'unit';
}

const BUILD = join(ROOT, '.build');
const COMPILED = new Set(['src', 'test', 'scripts', 'bench']);
const NOT_LINKED = new Set([...COMPILED, '.build', '.git', 'node_modules']);

/** Runs `node <args>` in the project, its output on this terminal; resolves with its exit code. */
function node(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit', env });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/** Type-checks the service and the web page, and writes the compiled tree; false on a type error. */
async function compile(): Promise<boolean> {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const [service, web] = await Promise.all([node([tsc, '-p', 'tsconfig.test.json']), node([tsc, '-p', 'web'])]);
  if (service !== 0 || web !== 0) return false;
  mkdirSync(BUILD, { recursive: true });
  const linked = new Set(readdirSync(BUILD)); // links made by an earlier run, dangling ones included
  for (const name of readdirSync(ROOT)) {
    if (!NOT_LINKED.has(name) && !linked.has(name)) symlinkSync(join(ROOT, name), join(BUILD, name));
  }
  return true;
}

const compiled = (file: string) => join('.build', file.replace(/\.ts$/, '.js'));

async function run(group: Group, files: string[], env: NodeJS.ProcessEnv): Promise<number> {
  console.log(`\n# ${group}: ${files.length} files`);
  const started = performance.now();
  const status = await node(['--test', `--test-concurrency=${CONCURRENCY[group]}`, ...files.map(compiled)], env);
  // The suite has a time budget (6 minutes in all); each group says what it took of it.
  console.log(`# ${group}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return status;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const which = process.argv[2] ?? 'all';
  const chosen: Group[] = which === 'all' ? [...GROUPS] : GROUPS.includes(which as Group) ? [which as Group] : [];
  if (chosen.length === 0) {
    console.error(`unknown group '${which}': one of all, ${GROUPS.join(', ')}`);
    process.exit(2);
  }
  const byGroup = new Map<Group, string[]>(GROUPS.map((g) => [g, []]));
  for (const file of testFiles().sort(byLength)) byGroup.get(groupOf(file))!.push(file);
  if (process.argv.includes('--list')) {
    for (const g of chosen) console.log(`${g}:\n  ${byGroup.get(g)!.join('\n  ')}`);
    process.exit(0);
  }

  const env = { ...process.env };
  // The fixture trains (in this process) while tsc compiles (in two others).
  let fixture: string | undefined;
  const t0 = performance.now();
  const trained = chosen.some((g) => g !== 'unit') && !env[FIXTURE_ENV]
    ? buildFixture((fixture = join(tmpdir(), `mnist-test-fixture-${process.pid}`))).then(() => {
        console.log(`# fixture model trained in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${fixture}`);
        env[FIXTURE_ENV] = fixture;
      })
    : Promise.resolve();
  const [typesOk] = await Promise.all([compile(), trained]);
  if (!typesOk) {
    if (fixture) rmSync(fixture, { recursive: true, force: true });
    console.error('# type errors: no tests run');
    process.exit(1);
  }
  console.log(`# type-checked and compiled to .build/ in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // A fresh machine with redis-server installed but not running still runs every group.
  const redis = chosen.some((g) => g !== 'unit')
    ? await ensureRedis(env.REDIS_URL ?? loadConfig({}).REDIS_URL, { info: (_o, msg) => console.log(`# ${msg}`) }, { dir: join(tmpdir(), `mnist-test-redis-${process.pid}`), persist: false }).catch((err: Error) => {
        console.error(`# ${err.message}`);
        if (fixture) rmSync(fixture, { recursive: true, force: true });
        process.exit(1);
      })
    : undefined;
  let failed = 0;
  const started = performance.now();
  try {
    for (const g of chosen) if ((await run(g, byGroup.get(g)!, env)) !== 0) failed++;
    console.log(`# tests: ${((performance.now() - started) / 1000).toFixed(1)} s after compiling`);
  } finally {
    if (fixture) rmSync(fixture, { recursive: true, force: true });
    await redis?.stop();
  }
  process.exit(failed ? 1 : 0);
}
