/**
 * The benchmark suite, run by bench/main.ts (`npm run bench`).
 * Runs each section, writes bench/results/<date>-<host>[-quick].json (+ the summary as .md) and prints the markdown summary.
 * Progress goes to stderr, the summary to stdout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from './fixtures.js';
import { machineInfo, machineMarkdown } from './machine.js';
import type { BenchSection, SectionOptions, SectionResult } from './section.js';
import { formatNumber, formatSummary, markdownTable, type Summary } from './stats.js';

/**
 * Sections in run order: key in the results JSON, title, and a loader (imported only when the
 * section runs, so a kernels-only run does not pay for usearch, autocannon & co. of the others).
 */
export const SECTIONS = [
  { key: 'kernels', title: 'Kernels', load: async (): Promise<BenchSection> => (await import('./kernels.js')).benchKernels },
  { key: 'encoder', title: 'Encoder', load: async (): Promise<BenchSection> => (await import('./encoder.js')).benchEncoder },
  { key: 'encoderFlows', title: 'Encoder per flow', load: async (): Promise<BenchSection> => (await import('./encoder-flows.js')).benchEncoderFlows },
  { key: 'endToEnd', title: 'End to end', load: async (): Promise<BenchSection> => (await import('./e2e.js')).benchEndToEnd },
  { key: 'server', title: 'Server load', load: async (): Promise<BenchSection> => (await import('./server.js')).benchServer },
  { key: 'scaleOut', title: 'Scale-out: ingest', load: async (): Promise<BenchSection> => (await import('./scale-out.js')).benchScaleOut },
  { key: 'scaleOutQuery', title: 'Scale-out: query', load: async (): Promise<BenchSection> => (await import('./scale-out-query.js')).benchScaleOutQuery },
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
  /** Sections that failed, with the error (the others still ran). */
  readonly failed: Partial<Record<SectionKey, string>>;
  readonly seconds: number;
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
  const failed: BenchResults['failed'] = {};
  const blocks: string[] = [`# flower-native benchmark${options.quick ? ' (--quick)' : ''}`, `${date}, ${runs} runs per figure: median (min–max).`, machineMarkdown(machine)];
  for (const section of SECTIONS) {
    if (!wanted.has(section.key)) continue;
    log(`bench: ${section.title}…`);
    const sectionStart = performance.now();
    let result: SectionResult;
    try {
      result = await (await section.load())(sectionOptions);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      failed[section.key] = reason;
      blocks.push(`## ${section.title}\nfailed: ${reason}`);
      log(`bench: ${section.title} failed: ${error instanceof Error ? error.stack : reason}`);
      continue;
    }
    const seconds = (performance.now() - sectionStart) / 1000;
    sections[section.key] = { ...result.data, seconds: Math.round(seconds * 10) / 10 };
    blocks.push(`## ${section.title}\n${result.markdown.trim()}`);
    log(`bench: ${section.title} done in ${seconds.toFixed(1)} s`);
  }

  const comparison = [indexingVsEncoder(sections), flowsVsEncoder(sections)].filter((block) => block !== undefined);
  if (comparison.length > 0) blocks.push(`## Indexing vs the encoder alone\n${comparison.join('\n\n')}`);

  const results: BenchResults = { version: 1, date, quick: options.quick, runs, machine, sections, failed, seconds: Math.round((performance.now() - started) / 100) / 10 };
  const file = path.resolve(options.out ?? path.join(projectRoot, 'bench', 'results', `${date.slice(0, 10)}-${safeHost(machine.host)}${options.quick ? '-quick' : ''}.json`));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  const shown = path.relative(process.cwd(), file);
  blocks.push(`Results: ${shown.startsWith('..') ? file : shown} (${results.seconds} s in all).`);
  const markdown = `${blocks.join('\n\n')}\n`;
  fs.writeFileSync(file.replace(/(\.json)?$/, '.md'), markdown); // the summary beside the figures, for people
  return { file, results, markdown };
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
 * End-to-end indexing throughput against the encoder alone at the settings the index flow used, when both
 * sections ran. They are separate runs of one invocation, so this ratio is only as steady as the
 * machine; the end-to-end section's encoder-busy share is the in-run figure.
 */
function indexingVsEncoder(sections: BenchResults['sections']): string | undefined {
  type Setting = Pick<EncoderSetting, 'replicas' | 'intraOpThreads' | 'batchSize'>;
  const indexing = (sections.endToEnd as { indexing?: { chunksPerSecond: Summary; cpuMsPerChunk: Summary; encoder: Setting } } | undefined)?.indexing;
  const settings = (sections.encoder as { settings?: EncoderSetting[] } | undefined)?.settings;
  if (!indexing || !settings) return undefined;
  const used = indexing.encoder;
  const alone = settings.find((s) => !s.allowSpinning && s.replicas === used.replicas && s.intraOpThreads === used.intraOpThreads && s.batchSize === used.batchSize);
  const setting = `${used.replicas} × ${used.intraOpThreads}, batch ${used.batchSize}`;
  if (!alone) return `The encoder section did not measure the index flow's setting (${setting}).`;
  const share = (100 * indexing.chunksPerSecond.median) / alone.chunksPerSecond.median;
  return (
    `Indexing ran at ${formatSummary(indexing.chunksPerSecond)} chunks/s; the encoder alone at the index flow's setting ` +
    `(${setting}) at ${formatSummary(alone.chunksPerSecond)} chunks/s: ${share.toFixed(0)} % (medians of separate runs in this invocation).` +
    (alone.cpuMsPerChunk
      ? ` Process CPU per chunk, steadier on a busy machine: ${formatSummary(indexing.cpuMsPerChunk)} ms indexing vs ${formatSummary(alone.cpuMsPerChunk)} ms encoding alone, so everything but the model costs ${formatNumber(indexing.cpuMsPerChunk.median - alone.cpuMsPerChunk.median)} ms per chunk.`
      : '')
  );
}

/**
 * Per index flow: end-to-end images/s against the encoder alone for that flow (Encoder per flow
 * section: the same passes over pre-decoded images), when both sections ran; and process CPU per
 * image, what everything but the model costs.
 */
function flowsVsEncoder(sections: BenchResults['sections']): string | undefined {
  type Figures = { imagesPerSecond: Summary; cpuMsPerImage: Summary };
  const indexing = (sections.endToEnd as { flows?: Record<string, Figures>; defaultFlow?: string } | undefined) ?? {};
  const alone = sections.encoderFlows as Record<string, Figures | undefined> | undefined;
  if (!indexing.flows || !alone) return undefined;
  const rows = Object.entries(indexing.flows).flatMap(([name, flow]) => {
    const encoder = alone[name];
    if (!encoder?.imagesPerSecond) return [];
    return [
      [
        `${name}${name === indexing.defaultFlow ? ' (the default)' : ''}`,
        formatSummary(flow.imagesPerSecond),
        formatSummary(encoder.imagesPerSecond),
        `${((100 * flow.imagesPerSecond.median) / encoder.imagesPerSecond.median).toFixed(0)} %`,
        formatSummary(flow.cpuMsPerImage, 0),
        formatSummary(encoder.cpuMsPerImage, 0),
      ],
    ];
  });
  if (rows.length === 0) return undefined;
  return [
    'Per index flow: indexing images/s (End to end) against the encoder alone on the same passes (Encoder per flow), medians of separate runs in this invocation; process CPU per image, steadier on a busy machine:',
    '',
    markdownTable(['flow', 'indexing images/s', 'encoder alone images/s', 'share', 'indexing CPU ms/image', 'encoder alone CPU ms/image'], rows),
  ].join('\n');
}

function safeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9._-]/g, '_') || 'host';
}
