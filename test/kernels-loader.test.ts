/**
 * Finding and loading the addon: the locations in order, one error naming every failure, nothing
 * loaded or printed at import, and the fallback line printed once, on the first kernel call.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelInfo } from '../src/kernels/index.js';
import { addonLocations, AddonLoadError, loadAddon } from '../src/kernels/native.js';

const kernelsIndex = fileURLToPath(import.meta.resolve('../src/kernels/index.js'));
const built = addonLocations().find(({ file }) => fs.existsSync(file));

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kernels-loader-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs an ES module script in a fresh Node process; stdout is its last line as JSON, stderr comes back as lines. */
function runScript<Result>(script: string, env: Record<string, string | undefined>): { result: Result; stderr: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kernels-loader-run-'));
  try {
    const stderrFile = path.join(dir, 'stderr.txt');
    const merged = { ...process.env, ...env };
    for (const [name, value] of Object.entries(env)) if (value === undefined) delete merged[name];
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: merged, encoding: 'utf8', stdio: ['ignore', 'pipe', fs.openSync(stderrFile, 'w')] });
    return { result: JSON.parse(stdout.trim().split('\n').at(-1)!) as Result, stderr: fs.readFileSync(stderrFile, 'utf8').split('\n').filter(Boolean) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('the locations are the local builds, then a prebuilt binary for this platform', (t) => {
  const root = path.resolve(path.dirname(kernelsIndex), '../../..');
  t.deepEqual(
    addonLocations().map(({ file }) => path.relative(root, file)),
    [path.join('build', 'Release', 'flower_native.node'), path.join('build', 'Debug', 'flower_native.node'), path.join('prebuilds', `${process.platform}-${process.arch}`, 'flower_native.node')],
  );
});

test('when no location loads, one error lists every location tried with its own failure', (t) => {
  const dir = tempDir(t);
  const junk = path.join(dir, 'junk.node');
  fs.writeFileSync(junk, 'not a shared library');
  const locations = [
    { file: path.join(dir, 'missing.node'), source: 'first' },
    { file: junk, source: 'second' },
    { file: path.join(dir, 'also-missing.node'), source: 'third' },
  ];
  const error = t.throws(() => loadAddon(locations), { instanceOf: AddonLoadError });
  t.deepEqual(
    error.failures.map(({ file, source }) => ({ file, source })),
    locations,
  );
  t.is(error.failures[0].error, 'not found');
  t.not(error.failures[1].error, 'not found');
  t.false(error.failures[1].error.includes(junk), 'the file is not repeated in its own failure');
  t.is(error.failures[2].error, 'not found');
  const lines = error.message.split('\n');
  t.is(lines.length, 4);
  locations.forEach(({ file, source }, i) => t.is(lines[i + 1], `  ${file} (${source}): ${error.failures[i].error}`));
});

(built ? test : test.skip)('the first location that loads wins', (t) => {
  const dir = tempDir(t);
  const { addon, file } = loadAddon([{ file: path.join(dir, 'missing.node'), source: 'nowhere' }, built!]);
  t.is(file, built!.file);
  t.is(typeof addon.cosineTopK, 'function');
});

test('importing the kernels loads and prints nothing; the first kernel call falls back to TS and says so once, from the main thread only', (t) => {
  // Every dlopen fails, in this thread and in a worker, so whatever is built cannot load.
  const failDlopen = `process.dlopen = () => { throw new Error('simulated dlopen failure'); };`;
  const script = `${failDlopen}
    const { Worker } = await import('node:worker_threads');
    const { kernels, kernelInfo } = await import(${JSON.stringify(kernelsIndex)});
    process.stderr.write('imported\\n');
    const input = { matrix: Float32Array.of(1, 0, 0, 1), rows: 2, dim: 2, queries: Float32Array.of(0, 1), k: 1 };
    const ids = [...kernels.cosineTopK(input).ids, ...kernels.cosineTopK(input).ids];
    await new Promise((resolve, reject) => new Worker(${JSON.stringify(`${failDlopen}
      import(${JSON.stringify(kernelsIndex)}).then(({ kernels }) => kernels.cosineTopK({ matrix: Float32Array.of(1), rows: 1, dim: 1, queries: Float32Array.of(1), k: 1 }));`)}, { eval: true })
      .on('error', reject).on('exit', resolve));
    console.log(JSON.stringify({ ids, name: kernels.name, info: kernelInfo() }));`;
  const { result, stderr } = runScript<{ ids: number[]; name: string; info: KernelInfo }>(script, { FLOWER_NATIVE_KERNELS: undefined });
  t.deepEqual(result.ids, [1, 1]);
  t.is(result.name, 'ts');
  t.is(result.info.kernels, 'ts');
  t.deepEqual(
    result.info.tried?.map(({ file }) => file),
    addonLocations().map(({ file }) => file),
  );
  for (const { file, error } of result.info.tried ?? []) t.is(error, fs.existsSync(file) ? 'simulated dlopen failure' : 'not found', file);
  t.is(stderr[0], 'imported', 'nothing printed at import');
  t.is(stderr.length, 2, stderr.join('\n'));
  t.regex(stderr[1], /^flower-native: native addon did not load from .*; using the \(slower\) TypeScript kernels/);
  for (const { file } of addonLocations()) t.true(stderr[1].includes(file), `the warning names ${file}`);
});

const countDlopen = `let dlopens = 0;
  const dlopen = process.dlopen;
  process.dlopen = function (...args) { dlopens++; return dlopen.apply(this, args); };`;

(built ? test : test.skip)('the addon is loaded on the first kernel call, once, not at import', (t) => {
  const script = `${countDlopen}
    const { kernels, kernelInfo } = await import(${JSON.stringify(kernelsIndex)});
    const atImport = dlopens;
    const ids = [...kernels.cosineTopK({ matrix: Float32Array.of(1, 0, 0, 1), rows: 2, dim: 2, queries: Float32Array.of(0, 1), k: 1 }).ids];
    const afterCall = dlopens;
    const info = kernelInfo();
    console.log(JSON.stringify({ atImport, afterCall, atEnd: dlopens, ids, info }));`;
  const { result, stderr } = runScript<{ atImport: number; afterCall: number; atEnd: number; ids: number[]; info: KernelInfo }>(script, { FLOWER_NATIVE_KERNELS: undefined });
  t.deepEqual([result.atImport, result.afterCall, result.atEnd], [0, 1, 1]);
  t.deepEqual(result.ids, [1]);
  t.is(result.info.kernels, 'native');
  t.is(result.info.addon, built!.file);
  t.deepEqual(stderr, []);
});

test('FLOWER_NATIVE_KERNELS=ts never loads the addon and prints nothing', (t) => {
  const script = `${countDlopen}
    const { kernels, kernelInfo } = await import(${JSON.stringify(kernelsIndex)});
    kernels.cosineTopK({ matrix: Float32Array.of(1, 0, 0, 1), rows: 2, dim: 2, queries: Float32Array.of(0, 1), k: 1 });
    console.log(JSON.stringify({ dlopens, name: kernels.name, info: kernelInfo() }));`;
  const { result, stderr } = runScript<{ dlopens: number; name: string; info: KernelInfo }>(script, { FLOWER_NATIVE_KERNELS: 'ts' });
  t.is(result.dlopens, 0);
  t.is(result.name, 'ts');
  t.deepEqual(result.info, { kernels: 'ts', simd: 'none', reason: 'FLOWER_NATIVE_KERNELS=ts' });
  t.deepEqual(stderr, []);
});

test('the addon and its internal controls are reachable only through native.ts, not the public entry points', async (t) => {
  for (const entry of ['../src/index.js', '../src/kernels/index.js']) {
    const exported = Object.keys((await import(entry)) as object);
    t.deepEqual(
      exported.filter((name) => /addon|^_|setSimd|setThreads|bandwidth/i.test(name)),
      [],
      entry,
    );
  }
});
