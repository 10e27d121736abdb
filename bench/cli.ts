/** `flower-native bench`: the benchmark suite from the CLI (the same as `npm run bench`). */
import type { Command } from 'commander';
import { listOf, positiveInt } from '../src/cli/args.js';
import { runBench, SECTIONS, type BenchOptions, type SectionKey } from './run.js';

interface BenchCliOptions {
  quick?: boolean;
  sections?: SectionKey[];
  runs?: number;
  out?: string;
  images?: number;
  queries?: number;
}



export function addBenchOptions(command: Command): Command {
  return command
    .option('--quick', 'smaller sizes and fewer runs (under 2 minutes)')
    .option('--sections <list>', `sections to run, comma-separated (${SECTIONS.map((s) => s.key).join(',')})`, listOf(SECTIONS.map((section) => section.key), 'section'))
    .option('--runs <n>', 'runs per figure (default 5, quick 2)', positiveInt)
    .option('--out <file>', 'results JSON path (default bench/results/<date>-<host>[-quick].json)')
    .option('--images <n>', 'end to end: fixture images to index (default all 1360, quick 68)', positiveInt)
    .option('--queries <n>', 'end to end: query images per latency pass (default 100, quick 20)', positiveInt);
}

export function benchOptionsFrom(options: BenchCliOptions): BenchOptions {
  return {
    quick: options.quick ?? false,
    sections: options.sections,
    runs: options.runs,
    out: options.out,
    sectionOptions: { images: options.images, queries: options.queries },
  };
}

export function register(program: Command): void {
  addBenchOptions(program.command('bench').description('benchmark suite: kernels, encoder, end-to-end indexing and query latency, server load')).action(
    async (options: BenchCliOptions) => {
      const { markdown, results } = await runBench(benchOptionsFrom(options));
      process.stdout.write(markdown);
      if (Object.keys(results.failed).length > 0) process.exitCode = 1;
    },
  );
}
