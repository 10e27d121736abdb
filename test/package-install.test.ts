/**
 * The package as a user gets it: `npm pack`, then the tarball installed into an empty project and its
 * `index`, `query` and `serve` run there, with nothing downloaded.
 *
 * Offline, honestly: the consumer's lockfile is the production part of ours (with each package's registry
 * tarball URL and integrity), so `npm ci --offline` takes every package from the npm cache that our own
 * `npm ci` filled, and runs every install script as a user's install would. Two of those scripts would
 * otherwise reach the network: onnxruntime-node's (skipped with ONNXRUNTIME_NODE_INSTALL=skip; the CPU build
 * ships in its package) and better-sqlite3's prebuild-install, which is pointed at a local prebuilds folder
 * holding the binary this checkout built for the same version and Node ABI (what it would download; a
 * compile from source would take minutes). A dead proxy makes any other download attempt fail.
 * FLOWER_NATIVE_SKIP_BUILD=1: the package's own install script then skips the cmake build and the
 * TypeScript kernels run.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { create } from 'tar';
import { flowerImage, modelDir, projectRoot } from '../bench/fixtures.js';

const run = promisify(execFile);
const DEAD_PROXY = 'http://127.0.0.1:9';

/** Ours minus npm's per-run variables, so the nested npm acts as in a fresh shell (the npm cache setting is kept). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || key.toLowerCase() === 'npm_config_cache'));
  return { ...env, HTTP_PROXY: DEAD_PROXY, HTTPS_PROXY: DEAD_PROXY, npm_config_proxy: DEAD_PROXY, npm_config_https_proxy: DEAD_PROXY, npm_config_update_notifier: 'false', ...extra };
}

async function sh(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return run(command, args, { cwd, env, maxBuffer: 64 << 20 }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
}

interface LockEntry {
  version?: string;
  resolved?: string;
  dev?: boolean;
  [key: string]: unknown;
}

/** A consumer lockfile: the tarball plus the production packages of our lockfile, each with its registry tarball URL (so no metadata lookup is needed). */
function consumerLock(tarballSpec: string): object {
  const ours = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const packageEntry = Object.fromEntries(Object.entries(ours.packages['']).filter(([key]) => key !== 'name' && key !== 'devDependencies'));
  const packages: Record<string, LockEntry> = {
    '': { name: 'flower-consumer', version: '1.0.0', dependencies: { 'flower-native': tarballSpec } },
    'node_modules/flower-native': { ...packageEntry, resolved: tarballSpec },
  };
  for (const [where, entry] of Object.entries(ours.packages)) {
    if (!where || entry.dev) continue;
    const name = where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length);
    packages[where] = { ...entry, resolved: entry.resolved ?? `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${entry.version}.tgz` };
  }
  return { name: 'flower-consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

/** better-sqlite3's built binary as the prebuild tarball prebuild-install looks for, in a folder of its own. */
async function localBetterSqlitePrebuild(dir: string): Promise<string> {
  const packageDir = path.join(projectRoot, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  fs.mkdirSync(dir);
  await create({ gzip: true, cwd: packageDir, file: path.join(dir, `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`) }, [
    'build/Release/better_sqlite3.node',
  ]);
  return dir;
}

test('the packed tarball ships no bench or tests, installs offline into an empty project and runs index, query and serve', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-package-install-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

  // --ignore-scripts: `prepare` would rebuild the whole tree; the suite runs after `tsc -p .` already.
  const { stdout: packJson } = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], projectRoot, cleanEnv({}));
  const [packed] = JSON.parse(packJson) as { filename: string; files: { path: string }[] }[];
  const files = packed.files.map((file) => file.path);
  t.deepEqual(
    files.filter((file) => /^dist\/(bench|test)\//.test(file)),
    [],
    'no dist/bench, no dist/test',
  );
  for (const file of [
    'dist/src/cli/main.js',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/server/index.js',
    'dist/src/server/index.d.ts',
    'scripts/build-native.mjs',
    'flows/index.yml',
    'flows/query.yml',
    'flows/index-crops.yml',
    'flows/index-regions.yml',
    'flows/query-regions.yml',
  ]) {
    t.true(files.includes(file), `ships ${file}`);
  }

  const consumer = path.join(tmp, 'consumer');
  fs.mkdirSync(consumer);
  const spec = `file:../${packed.filename}`;
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'flower-consumer', version: '1.0.0', private: true, dependencies: { 'flower-native': spec } }, null, 2));
  fs.writeFileSync(path.join(consumer, 'package-lock.json'), JSON.stringify(consumerLock(spec), null, 2));
  const installEnv = cleanEnv({
    ONNXRUNTIME_NODE_INSTALL: 'skip',
    FLOWER_NATIVE_SKIP_BUILD: '1',
    npm_config_better_sqlite3_local_prebuilds: await localBetterSqlitePrebuild(path.join(tmp, 'prebuilds')),
  });
  const install = await sh('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], consumer, installEnv);
  t.regex(install.stdout, /FLOWER_NATIVE_SKIP_BUILD=1, not building the native kernels/, "the package's install script ran");
  t.false(fs.existsSync(path.join(consumer, 'node_modules', 'better-sqlite3', 'build', 'Release', 'obj.target')), 'better-sqlite3 came from the local prebuild, not a compile');

  const env = cleanEnv({});
  const data = path.join(consumer, 'photos');
  fs.mkdirSync(data);
  for (const n of [1, 2, 3, 721, 722, 801]) fs.copyFileSync(flowerImage(n), path.join(data, path.basename(flowerImage(n))));
  const workspace = path.join(consumer, 'ws');
  const indexed = await sh('npx', ['--no', '--offline', 'flower-native', 'index', '--workspace', workspace, '--data', data, '--model', modelDir], consumer, env);
  t.regex(indexed.stdout, /indexed 6 images/);

  const queried = await sh('npx', ['--no', '--offline', 'flower-native', 'query', flowerImage(4), '--workspace', workspace, '--top', '3', '--json'], consumer, env);
  const [answer] = (JSON.parse(queried.stdout) as { queries: { results: { rank: number; path: string }[] }[] }).queries;
  t.deepEqual(
    answer.results.map((hit) => hit.rank),
    [1, 2, 3],
  );
  t.true([1, 2, 3].map((n) => path.join(data, path.basename(flowerImage(n)))).includes(answer.results[0].path), 'a daffodil query finds a daffodil first');

  // The bin link directly: `npx` does not pass SIGTERM on to the command it started.
  const server = spawn(path.join(consumer, 'node_modules', '.bin', 'flower-native'), ['serve', '--workspace', workspace, '--port', '0', '--no-log'], {
    cwd: consumer,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => server.kill('SIGKILL'));
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const listening = /listening on (http:\/\/\S+)/.exec(stderr);
      if (listening) resolve(listening[1]);
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening:\n${stderr}`)));
  });
  const health = await fetch(new URL('/healthz', url));
  t.is(health.status, 200);
  t.like(await health.json(), { status: 'ok', docs: 6 });
  server.kill('SIGTERM');
  t.is(await exited, 0, stderr);
  t.regex(stderr, /stopped/);
});
