/**
 * Two or more builds of the addon side by side in one process: top-k over the same 100k × 1280
 * matrix, Q = 1 then Q = 7, alternating between the builds round by round, so that the machine's
 * drift (a neighbour on a VM moves these figures by 20–50 %) hits every build alike. How the
 * kernel changes were measured:
 *
 *   cp build/Release/flower_native.node /tmp/before.node   # then change native/, rebuild
 *   node dist/bench/compare-addons.js /tmp/before.node build/Release/flower_native.node [--rounds 40] [--rows 100000]
 *
 * Checks first that every build returns the same ids as the first one.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Addon } from '../src/kernels/native.js';
import { fillUnitRows, timeOnce } from './kernels.js';
import { summarize, summarizeRatio, formatSummary } from './stats.js';

const DIM = 1280;
const K = 100;

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} needs a positive integer, got ${args[at + 1]}`);
  args.splice(at, 2);
  return value;
}

const args = process.argv.slice(2);
const rounds = option(args, '--rounds', 40);
const rows = option(args, '--rows', 100_000);
if (args.length === 0) throw new Error('usage: compare-addons <flower_native.node> [<another.node> …] [--rounds N] [--rows N]');
const load = createRequire(import.meta.url);
const builds = args.map((file) => ({ name: file, addon: load(path.resolve(file)) as Addon, q1: [] as number[], q7: [] as number[] }));

const matrix = new Float32Array(rows * DIM);
fillUnitRows(matrix, DIM, 1);
const queries = new Float32Array(7 * DIM);
fillUnitRows(queries, DIM, 2);
const oneQuery = queries.slice(0, DIM);

const reference = builds[0].addon.cosineTopK(matrix, rows, DIM, queries, K).ids;
for (const build of builds) {
  const ids = build.addon.cosineTopK(matrix, rows, DIM, queries, K).ids;
  if (!ids.every((id, i) => id === reference[i])) throw new Error(`${build.name} returns other ids than ${builds[0].name}`);
}
for (let round = 0; round < rounds; round++) {
  for (const build of builds) {
    build.q1.push(timeOnce(() => build.addon.cosineTopK(matrix, rows, DIM, oneQuery, K)));
    build.q7.push(timeOnce(() => build.addon.cosineTopK(matrix, rows, DIM, queries, K)));
  }
}
process.stdout.write(`top-k ${rows}×${DIM}, k ${K}, ${rounds} rounds: median (min–max) ms\n`);
for (const build of builds) {
  process.stdout.write(
    `${build.name}\n  Q = 1 ${formatSummary(summarize(build.q1))}   Q = 7 ${formatSummary(summarize(build.q7))}   ` + `Q7/Q1 per round ${formatSummary(summarizeRatio(build.q7, build.q1), 2)}\n`,
  );
}
