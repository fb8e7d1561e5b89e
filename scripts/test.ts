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
 *   node --import tsx scripts/test.ts [all | unit | integration | e2e | browser] [--list]
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
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
const CONCURRENCY: Record<Group, number> = { unit: 2, integration: 3, e2e: 2, browser: 1 };

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

function run(group: Group, files: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = ['--import', 'tsx', '--test', `--test-concurrency=${CONCURRENCY[group]}`, ...files];
  console.log(`\n# ${group}: ${files.length} files`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit', env });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const which = process.argv[2] ?? 'all';
  const chosen: Group[] = which === 'all' ? [...GROUPS] : GROUPS.includes(which as Group) ? [which as Group] : [];
  if (chosen.length === 0) {
    console.error(`unknown group '${which}': one of all, ${GROUPS.join(', ')}`);
    process.exit(2);
  }
  const byGroup = new Map<Group, string[]>(GROUPS.map((g) => [g, []]));
  for (const file of testFiles()) byGroup.get(groupOf(file))!.push(file);
  if (process.argv.includes('--list')) {
    for (const g of chosen) console.log(`${g}:\n  ${byGroup.get(g)!.join('\n  ')}`);
    process.exit(0);
  }

  const env = { ...process.env };
  // A fresh machine with redis-server installed but not running still runs every group.
  const redis = chosen.some((g) => g !== 'unit')
    ? await ensureRedis(env.REDIS_URL ?? loadConfig({}).REDIS_URL, { info: (_o, msg) => console.log(`# ${msg}`) }, { dir: join(tmpdir(), `mnist-test-redis-${process.pid}`), persist: false }).catch((err: Error) => {
        console.error(`# ${err.message}`);
        process.exit(1);
      })
    : undefined;
  let fixture: string | undefined;
  if (chosen.some((g) => g !== 'unit') && !env[FIXTURE_ENV]) {
    fixture = join(tmpdir(), `mnist-test-fixture-${process.pid}`);
    const t0 = performance.now();
    await buildFixture(fixture);
    console.log(`# fixture model trained in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${fixture}`);
    env[FIXTURE_ENV] = fixture;
  }
  let failed = 0;
  try {
    for (const g of chosen) if ((await run(g, byGroup.get(g)!, env)) !== 0) failed++;
  } finally {
    if (fixture) rmSync(fixture, { recursive: true, force: true });
    await redis?.stop();
  }
  process.exit(failed ? 1 : 0);
}
