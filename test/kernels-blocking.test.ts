/**
 * The blocking shared by the SIMD top-k kernels (native/score_blocking.h), run with plain-C++
 * vector types shaped like AVX-512, AVX2 and NEON: covers the paths this machine cannot execute.
 * Needs the C++ compiler the addon build uses ($CXX, else c++).
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../bench/fixtures.js';

const source = path.join(projectRoot, 'test/native/score_blocking_check.cc');
const compiler = process.env.CXX ?? 'c++';
const hasCompiler = spawnSync(compiler, ['--version']).status === 0;

(hasCompiler ? test : test.skip)('score_blocking.h gives exact dot products in the AVX-512, AVX2 and NEON shapes', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-blocking-'));
  try {
    const binary = path.join(dir, 'score_blocking_check');
    execFileSync(compiler, ['-std=c++17', '-O2', '-I', path.join(projectRoot, 'native'), source, '-o', binary], { stdio: 'pipe' });
    const run = spawnSync(binary, { encoding: 'utf8' });
    t.is(run.status, 0, run.stdout + run.stderr);
    t.regex(run.stdout, /^checked 450 shapes$/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
