/**
 * The benchmark program: `npm run bench` = `node dist/bench/main.js [--quick] [--sections a,b] [--runs n] [--out file] [--images n] [--queries n]`.
 * Not part of the shipped CLI. Usage errors print one line and exit 2, as the CLI's do; a failed section exits 1.
 */
import { Command, CommanderError } from 'commander';
import { listOf, positiveInt } from '../src/cli/args.js';
import { runBench, SECTIONS, type SectionKey } from './run.js';

interface BenchCliOptions {
  quick?: boolean;
  sections?: SectionKey[];
  runs?: number;
  out?: string;
  images?: number;
  queries?: number;
  peer?: boolean;
}

const sectionKeys = SECTIONS.map((section) => section.key);
const program = new Command('bench')
  .description('flower-native benchmark suite: kernels, encoder, end-to-end indexing and query latency, server load')
  .option('--quick', 'smaller sizes and fewer runs (under 2 minutes)')
  .option('--sections <list>', `sections to run, comma-separated (${sectionKeys.join(',')})`, listOf(sectionKeys, 'section'))
  .option('--runs <n>', 'runs per figure (default 5, quick 2)', positiveInt)
  .option('--out <file>', 'results JSON path (default bench/results/<date>-<host>[-quick].json)')
  .option('--images <n>', 'end to end: fixture images to index (default all 1360, quick 68)', positiveInt)
  .option('--queries <n>', 'end to end: query images per latency pass (default 100, quick 20)', positiveInt)
  .option('--peer', 'end to end: also run the Python peer (../shared/peers/python) when its packages are installed, and print the ratios')
  .exitOverride()
  .action(async (options: BenchCliOptions) => {
    const { markdown, results } = await runBench({
      quick: options.quick ?? false,
      sections: options.sections,
      runs: options.runs,
      out: options.out,
      sectionOptions: { images: options.images, queries: options.queries, peer: options.peer ?? false },
    });
    process.stdout.write(markdown);
    if (Object.keys(results.failed).length > 0) process.exitCode = 1;
  });

try {
  await program.parseAsync();
} catch (error) {
  // Usage errors were already printed by commander.
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2);
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
