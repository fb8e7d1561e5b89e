import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// Static checks of the container setup (docker/, docker-compose*.yml). No Docker engine is needed:
// `docker compose config` only parses, merges and normalises the files. A compose CLI is part of the
// test set-up (README, .ci/run: Debian's docker-compose); without one these checks fail and say so.
// Set COMPOSE_CLI (e.g. "docker compose" or a path to a docker-compose binary) to pick one.

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASE = ['-f', 'docker-compose.yml'];
const GPU = ['-f', 'docker-compose.yml', '-f', 'docker-compose.gpu.yml'];

// ---------------------------------------------------------------------------------------------
// Dockerfiles

interface Instruction { keyword: string; args: string }

/** Dockerfile instructions, with line continuations joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (!full) continue;
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ keyword: m[1].toUpperCase(), args: m[2] });
  }
  return out;
}

/** The instructions of the last stage (the image that runs). */
function finalStage(instructions: Instruction[]): Instruction[] {
  const lastFrom = instructions.map((i) => i.keyword).lastIndexOf('FROM');
  return instructions.slice(lastFrom);
}

const EXPECTED_DOCKERFILES: Record<string, string> = {
  'Dockerfile.api': 'start:api',
  'Dockerfile.worker': 'start:worker',
  'Dockerfile.worker-gpu': 'start:worker',
};

test('every Dockerfile runs an npm script that package.json defines, as a non-root user', async () => {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const dockerfiles = (await readdir(join(root, 'docker'))).filter((f) => f.startsWith('Dockerfile'));
  assert.deepEqual(dockerfiles.sort(), Object.keys(EXPECTED_DOCKERFILES).sort());

  for (const file of dockerfiles) {
    const instructions = parseDockerfile(await readFile(join(root, 'docker', file), 'utf8'));
    const stage = finalStage(instructions);
    assert.ok(instructions.filter((i) => i.keyword === 'FROM').length >= 2, `${file}: multi-stage build`);
    assert.ok(!stage.some((i) => i.keyword === 'ENTRYPOINT'), `${file}: no ENTRYPOINT of its own in the final stage`);

    const cmds = stage.filter((i) => i.keyword === 'CMD');
    assert.ok(cmds.length > 0, `${file}: has a CMD`);
    const cmd = JSON.parse(cmds.at(-1)!.args) as unknown;
    assert.ok(Array.isArray(cmd), `${file}: CMD uses the exec (JSON) form`);
    assert.deepEqual(cmd.slice(0, 2), ['npm', 'run'], `${file}: CMD runs an npm script`);
    const script = cmd[2] as string;
    assert.ok(script in pkg.scripts, `${file}: npm script "${script}" exists in package.json`);
    assert.equal(script, EXPECTED_DOCKERFILES[file], `${file}: runs the expected process`);

    const user = stage.filter((i) => i.keyword === 'USER').at(-1)?.args.split(':')[0];
    assert.ok(user && user !== 'root' && user !== '0', `${file}: final stage runs as a non-root user (USER ${user})`);

    const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    assert.match(runs, /npm ci --omit=dev/, `${file}: installs production dependencies from the lockfile`);
    assert.match(stage.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' '), /MODELS_DIR=\/models/, `${file}: MODELS_DIR=/models`);
  }

  const api = finalStage(parseDockerfile(await readFile(join(root, 'docker', 'Dockerfile.api'), 'utf8')));
  assert.ok(api.some((i) => i.keyword === 'HEALTHCHECK' && i.args.includes('/healthz')), 'API image has a /healthz HEALTHCHECK');
  assert.ok(api.some((i) => i.keyword === 'COPY' && /^web\s/.test(i.args)), 'API image ships the web page (web/), which GET / serves');
  const gpu = parseDockerfile(await readFile(join(root, 'docker', 'Dockerfile.worker-gpu'), 'utf8'));
  assert.ok(gpu.some((i) => i.keyword === 'ARG' && /nvidia\/cuda:11\.2\.\d+-cudnn8-runtime/.test(i.args)), 'GPU image is based on CUDA 11.2 + cuDNN 8');
  assert.match(finalStage(gpu).filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' '), /TF_BACKEND=tensorflow/);
});

// ---------------------------------------------------------------------------------------------
// docker compose config

interface Cli { cmd: string; pre: string[]; version: string; json: boolean }

/** A compose CLI's command (`docker compose`, or a `docker-compose` v2 or v1 binary), if any. */
async function findCompose(): Promise<Cli | undefined> {
  const forced = process.env.COMPOSE_CLI?.trim();
  const candidates = forced ? [forced.split(/\s+/)] : [['docker', 'compose'], ['docker-compose']];
  for (const [cmd, ...pre] of candidates) {
    try {
      const { stdout } = await run(cmd, [...pre, 'version', '--short'], { timeout: 30_000 });
      const version = stdout.trim().replace(/^v/, '');
      if (!/^\d+\./.test(version)) continue;
      // Compose v2 prints `config --format json`; v1 (python, 1.29) only YAML.
      return { cmd, pre, version, json: Number(version.split('.')[0]) >= 2 };
    } catch {
      // not installed, or `docker` without the compose plugin
    }
  }
  return undefined;
}

const cli = await findCompose();
const NO_CLI = 'no compose CLI found (neither `docker compose` nor `docker-compose`): install Debian\'s docker-compose package, as the README\'s test set-up says';

/** Runs compose with only PATH and HOME, so no COMPOSE_* or interpolated variable leaks in. */
async function compose(files: string[], ...args: string[]): Promise<string> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  const { stdout } = await run(cli!.cmd, [...cli!.pre, '--project-name', 'mnist-service', ...files, ...args], {
    cwd: root, env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

async function yamlToObject(text: string): Promise<unknown> {
  try {
    const name = 'yaml'; // present transitively (@fastify/swagger); not a direct dependency
    const mod = (await import(name)) as { parse: (s: string) => unknown };
    return mod.parse(text);
  } catch {
    // docker-compose v1 depends on python3-yaml, so python3 can convert its output.
    const py = 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)';
    return new Promise((resolve, reject) => {
      const child = execFile('python3', ['-c', py], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
        if (err) reject(err);
        else resolve(JSON.parse(stdout));
      });
      child.stdin!.end(text);
    });
  }
}

interface Service {
  image?: string;
  ports?: (string | { host_ip?: string; published?: string | number; target?: number })[];
  build?: { context?: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | null> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  profiles?: string[];
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; count?: number | string; capabilities?: string[] }[] } } };
}
interface Project { services: Record<string, Service>; volumes?: Record<string, unknown> }

/** `config` (validated with -q first) as an object, from JSON (v2) or YAML (v1). */
async function normalised(files: string[]): Promise<Project> {
  await compose(files, 'config', '-q');
  if (cli!.json) return JSON.parse(await compose(files, 'config', '--format', 'json')) as Project;
  return (await yamlToObject(await compose(files, 'config'))) as Project;
}

function env(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v ?? '')]));
}

function mounts(s: Service): { source: string; target: string }[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source, target] = v.split(':');
      return { source, target };
    }
    return { source: v.source ?? '', target: v.target ?? '' };
  });
}

function waitsForHealthyRedis(s: Service): boolean {
  const d = s.depends_on;
  return !!d && !Array.isArray(d) && d.redis?.condition === 'service_healthy';
}

function gpuDevices(s: Service) {
  return s.deploy?.resources?.reservations?.devices ?? [];
}

function assertAppService(name: string, s: Service): void {
  assert.deepEqual(mounts(s).filter((m) => m.target === '/models'), [{ source: 'models', target: '/models' }], `${name}: models volume at /models`);
  assert.equal(env(s).MODELS_DIR, '/models', `${name}: MODELS_DIR`);
  assert.equal(env(s).REDIS_URL, 'redis://redis:6379', `${name}: REDIS_URL`);
  assert.ok(waitsForHealthyRedis(s), `${name}: depends_on redis with condition service_healthy`);
  assert.ok(s.build?.dockerfile, `${name}: builds from a Dockerfile`);
  assert.ok(existsSync(join(root, s.build!.dockerfile!)), `${name}: ${s.build!.dockerfile} exists`);
}

function assertCommon(p: Project): void {
  assert.deepEqual(Object.keys(p.services).sort(), ['api', 'redis', 'worker'], 'exactly api, redis and one worker');
  assert.ok(p.volumes && 'models' in p.volumes, 'named volume "models"');

  const redis = p.services.redis;
  assert.match(redis.image ?? '', /^redis:7(\b|[.-])/, 'Redis 7');
  const command = Array.isArray(redis.command) ? redis.command.join(' ') : (redis.command ?? '');
  assert.match(command, /--appendonly yes/, 'Redis appendonly persistence');
  assert.ok(mounts(redis).some((m) => m.target === '/data' && m.source !== '' && !m.source.startsWith('/')), 'Redis data on a named volume');
  assert.ok(redis.healthcheck?.test && !redis.healthcheck.disable, 'Redis healthcheck');
  // `docker compose up -d redis` serves npm start and the tests on the host, on loopback only.
  const published = (redis.ports ?? []).map((p) => (typeof p === 'string' ? p : `${p.host_ip ?? ''}:${p.published}:${p.target}`));
  assert.ok(published.some((p) => /^127\.0\.0\.1:6379:6379/.test(p)), `Redis published on 127.0.0.1:6379 (got ${JSON.stringify(redis.ports)})`);

  const api = p.services.api;
  assertAppService('api', api);
  assert.equal(api.build?.dockerfile, 'docker/Dockerfile.api');
  assert.equal(env(api).HOST, '0.0.0.0');
  const apiHealth = [api.healthcheck?.test ?? []].flat().join(' ');
  assert.match(apiHealth, /\/healthz/, 'API healthcheck probes /healthz');
  assert.equal(gpuDevices(api).length, 0);

  assertAppService('worker', p.services.worker);
  for (const s of Object.values(p.services)) assert.equal(s.profiles, undefined, 'no service hidden behind a profile');
}

test('docker-compose.yml: api, CPU worker and Redis 7 on a models volume, no GPU needed', async () => {
  assert.ok(cli, NO_CLI);
  const p = await normalised(BASE);
  assertCommon(p);
  const worker = p.services.worker;
  assert.equal(worker.build?.dockerfile, 'docker/Dockerfile.worker');
  assert.equal(env(worker).TF_BACKEND, 'auto');
  assert.equal(gpuDevices(worker).length, 0, 'the default worker reserves no GPU');
  assert.ok(Object.values(p.services).every((s) => gpuDevices(s).length === 0));
});

test('docker-compose.gpu.yml: the GPU worker replaces the CPU worker and reserves an nvidia GPU', async () => {
  assert.ok(cli, NO_CLI);
  const p = await normalised(GPU);
  assertCommon(p);
  const worker = p.services.worker;
  assert.equal(worker.build?.dockerfile, 'docker/Dockerfile.worker-gpu');
  assert.equal(env(worker).TF_BACKEND, 'tensorflow');
  const devices = gpuDevices(worker);
  assert.equal(devices.length, 1);
  assert.equal(devices[0].driver, 'nvidia');
  assert.deepEqual(devices[0].capabilities, ['gpu']);
  const base = await normalised(BASE);
  assert.notEqual(worker.image, base.services.worker.image, 'CPU and GPU worker images have distinct tags');
  assert.equal(gpuDevices(p.services.api).length, 0, 'only the worker gets the GPU');
});
