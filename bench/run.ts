/**
 * The benchmark suite: `npm run bench` (this file) or `flower-native bench` (bench/cli.ts).
 * Runs each section, writes bench/results/<date>-<host>[-quick].json and prints a markdown summary.
 * Progress goes to stderr, the summary to stdout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { projectRoot } from '../test/fixtures.js';
import { machineInfo, machineMarkdown } from './machine.js';
import type { BenchSection, SectionOptions } from './section.js';
import { formatNumber, formatSummary, type Summary } from './stats.js';

/** Sections in run order: key in the results JSON, module under bench/, exported function. */
export const SECTIONS = [
  { key: 'kernels', module: 'kernels.js', fn: 'benchKernels', title: 'Kernels' },
  { key: 'encoder', module: 'encoder.js', fn: 'benchEncoder', title: 'Encoder' },
  { key: 'endToEnd', module: 'e2e.js', fn: 'benchEndToEnd', title: 'End to end' },
  { key: 'server', module: 'server.js', fn: 'benchServer', title: 'Server load' },
] as const;

export type SectionKey = (typeof SECTIONS)[number]['key'];

export interface BenchOptions {
  readonly quick: boolean;
  /** Sections to run (default: all). */
  readonly sections?: readonly SectionKey[];
  /** Runs per figure (default: 5, or 2 with quick). */
  readonly runs?: number;
  /** Results file (default: bench/results/<date>-<host>[-quick].json). */
  readonly out?: string;
  /** Extra options for sections (e.g. the end-to-end sizes), passed through as is. */
  readonly sectionOptions?: Record<string, unknown>;
  readonly log?: (line: string) => void;
}

export interface BenchResults {
  readonly version: 1;
  readonly date: string;
  readonly quick: boolean;
  readonly runs: number;
  readonly machine: ReturnType<typeof machineInfo>;
  readonly sections: Partial<Record<SectionKey, Record<string, unknown>>>;
  /** Sections that did not run, with the reason. */
  readonly skipped: Partial<Record<SectionKey, string>>;
  readonly seconds: number;
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));

/** A section's function, or why it cannot run (its file is absent or exports something else). */
async function loadSection(section: (typeof SECTIONS)[number]): Promise<BenchSection | string> {
  const file = path.join(benchDir, section.module);
  if (!fs.existsSync(file)) return `${path.relative(projectRoot, file)} is not there (not written or not built)`;
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const fn = mod[section.fn];
  return typeof fn === 'function' ? (fn as BenchSection) : `${path.relative(projectRoot, file)} does not export ${section.fn}()`;
}

export async function runBench(options: BenchOptions): Promise<{ file: string; results: BenchResults; markdown: string }> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runs = options.runs ?? (options.quick ? 2 : 5);
  const machine = machineInfo();
  const date = new Date().toISOString();
  const sectionOptions = { ...options.sectionOptions, quick: options.quick, runs, log } as SectionOptions;
  const wanted = new Set<SectionKey>(options.sections ?? SECTIONS.map((s) => s.key));

  const sections: BenchResults['sections'] = {};
  const skipped: BenchResults['skipped'] = {};
  const blocks: string[] = [
    `# flower-native benchmark${options.quick ? ' (--quick)' : ''}`,
    `${date}, ${runs} runs per figure: median (min–max).`,
    machineMarkdown(machine),
  ];
  for (const section of SECTIONS) {
    if (!wanted.has(section.key)) continue;
    const fn = await loadSection(section);
    if (typeof fn === 'string') {
      skipped[section.key] = fn;
      blocks.push(`## ${section.title}\nskipped: ${fn}`);
      log(`bench: ${section.title}: skipped (${fn})`);
      continue;
    }
    log(`bench: ${section.title}…`);
    const sectionStart = performance.now();
    const result = await fn(sectionOptions);
    const seconds = (performance.now() - sectionStart) / 1000;
    sections[section.key] = { ...result.data, seconds: Math.round(seconds * 10) / 10 };
    blocks.push(`## ${section.title}\n${result.markdown.trim()}`);
    log(`bench: ${section.title} done in ${seconds.toFixed(1)} s`);
  }

  const comparison = indexingVsEncoder(sections);
  if (comparison) blocks.push(`## Indexing vs the encoder alone\n${comparison}`);

  const results: BenchResults = { version: 1, date, quick: options.quick, runs, machine, sections, skipped, seconds: Math.round((performance.now() - started) / 100) / 10 };
  const file = path.resolve(options.out ?? path.join(projectRoot, 'bench', 'results', `${date.slice(0, 10)}-${safeHost(machine.host)}${options.quick ? '-quick' : ''}.json`));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const shown = path.relative(process.cwd(), file);
  blocks.push(`Results: ${shown.startsWith('..') ? file : shown} (${results.seconds} s in all).`);
  return { file, results, markdown: `${blocks.join('\n\n')}\n` };
}

interface EncoderSetting {
  replicas: number;
  intraOpThreads: number;
  batchSize: number;
  allowSpinning: boolean;
  chunksPerSecond: Summary;
  cpuMsPerChunk?: Summary;
}

/**
 * End-to-end indexing throughput against the encoder alone at the same settings, when both
 * sections ran. They are separate runs of one invocation, so this ratio is only as steady as the
 * machine; the end-to-end section's encoder-busy share is the in-run figure.
 */
function indexingVsEncoder(sections: BenchResults['sections']): string | undefined {
  const indexing = (sections.endToEnd as { indexing?: { chunksPerSecond: Summary; cpuMsPerChunk: Summary } } | undefined)?.indexing;
  const encoder = sections.encoder as { settings?: EncoderSetting[]; defaults?: Omit<EncoderSetting, 'chunksPerSecond' | 'allowSpinning'> } | undefined;
  const defaults = encoder?.defaults;
  const alone = encoder?.settings?.find(
    (s) => !s.allowSpinning && s.replicas === defaults?.replicas && s.intraOpThreads === defaults?.intraOpThreads && s.batchSize === defaults?.batchSize,
  );
  if (!indexing || !alone || !defaults) return undefined;
  const share = (100 * indexing.chunksPerSecond.median) / alone.chunksPerSecond.median;
  return (
    `Indexing ran at ${formatSummary(indexing.chunksPerSecond)} chunks/s; the encoder alone at the same setting ` +
    `(${defaults.replicas} × ${defaults.intraOpThreads}, batch ${defaults.batchSize}) at ${formatSummary(alone.chunksPerSecond)} chunks/s: ` +
    `${share.toFixed(0)} % (medians of separate runs in this invocation).` +
    (alone.cpuMsPerChunk
      ? ` Process CPU per chunk, steadier on a busy machine: ${formatSummary(indexing.cpuMsPerChunk)} ms indexing vs ${formatSummary(alone.cpuMsPerChunk)} ms encoding alone, so everything but the model costs ${formatNumber(indexing.cpuMsPerChunk.median - alone.cpuMsPerChunk.median)} ms per chunk.`
      : '')
  );
}

function safeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9._-]/g, '_') || 'host';
}

/** `node dist/bench/run.js [--quick] [--sections a,b] [--runs n] [--out file]` (npm run bench). */
async function main(argv: string[]): Promise<void> {
  const { Command } = await import('commander');
  const { addBenchOptions, benchOptionsFrom } = await import('./cli.js');
  const program = addBenchOptions(new Command('bench').description('flower-native benchmark suite')).exitOverride();
  program.action(async (opts) => {
    const { markdown } = await runBench(benchOptionsFrom(opts));
    process.stdout.write(markdown);
  });
  await program.parseAsync(argv, { from: 'node' });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { CommanderError } = await import('commander');
  main(process.argv).catch((error: unknown) => {
    // Usage errors were already printed by commander: exit 2, as the CLI does.
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
