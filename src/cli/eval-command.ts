/** `flower-native eval`: leave-one-out retrieval quality of a labelled workspace, as a table, JSON and an HTML report. */
import path from 'node:path';
import type { Command } from 'commander';
import { evaluate, type EvalResult } from '../eval/evaluate.js';
import { DEFAULT_DUPLICATE_THRESHOLD, RANK_MODES, RANKERS, type RankMode } from '../search/index.js';
import { METRIC_LABELS, METRIC_NAMES } from '../eval/metrics.js';
import { EDIT_KINDS, evaluateNearDuplicates, type NearDuplicateResult } from '../eval/near-duplicates.js';
import { writeHtmlReport } from '../eval/report.js';
import { listOf, positiveInt } from './args.js';
import { printable } from './terminal.js';

interface EvalCliOptions {
  workspace: string;
  data?: string;
  json?: boolean;
  report: string | false;
  top: number;
  samples: number;
  modes: RankMode[];
  flow?: string;
  leaky?: boolean;
  dedupe?: boolean;
  nearDuplicates?: boolean;
  count?: number;
  seed: number;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('leave-one-out retrieval quality over a labelled, indexed folder: P@1/5/10, mAP@10 and mAP per class and ranking mode')
    .requiredOption('-w, --workspace <dir>', 'indexed workspace')
    .option('-d, --data <dir>', 'folder with labels.csv (file,class_id,class_name); default: the labels stored at index time')
    .option('--json', 'print the metrics as JSON')
    .option('--report <file>', 'HTML report path (default: eval-report.html in the workspace)')
    .option('--no-report', 'skip the HTML report')
    .option('--top <n>', 'results shown per sample query in the report', positiveInt, 10)
    .option('--samples <n>', 'sample queries per class in the report', positiveInt, 2)
    .option('--modes <list>', `ranking modes, comma-separated (${RANK_MODES.join(',')})`, listOf(RANK_MODES, 'mode'), [...RANK_MODES])
    .option('--flow <file>', 'query flow YAML whose ranker top_k BiMatch uses (default: the packaged one)')
    .option('--dedupe', `also drop the query's duplicates (whole-image cosine >= ${DEFAULT_DUPLICATE_THRESHOLD}) from its candidates`)
    .option('--leaky', 'leave the query in what the index learned from it (neighbour lists, expanded vectors): measures the leak honest eval avoids')
    .option('--near-duplicates', `instead: recall@1 of seeded edited copies of indexed photos (${EDIT_KINDS.join(', ')}), queried through the query flow`)
    .option('--count <n>', 'edited copies for --near-duplicates (default 540: 60 per kind)', positiveInt)
    .option('--seed <s>', 'seed of the --near-duplicates set', positiveInt, 1)
    .action(async (options: EvalCliOptions) => {
      const progress = progressPrinter();
      if (options.nearDuplicates) {
        const result = await evaluateNearDuplicates({ workspace: options.workspace, modes: options.modes, count: options.count, seed: options.seed, onProgress: progress });
        process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : printable(nearDuplicateText(result)));
        return;
      }
      const result = await evaluate({
        workspace: options.workspace,
        data: options.data,
        flow: options.flow,
        modes: options.modes,
        keep: options.top,
        dedupe: options.dedupe,
        leaky: options.leaky,
        onNotice: (message) => process.stderr.write(printable(`flower-native eval: ${message}\n`)),
        onProgress: progress,
      });
      let reportFile: string | undefined;
      if (options.report !== false) {
        reportFile = path.resolve(typeof options.report === 'string' ? options.report : path.join(options.workspace, 'eval-report.html'));
        await writeHtmlReport(reportFile, result, { top: options.top, samplesPerClass: options.samples });
      }
      process.stdout.write(options.json ? `${JSON.stringify(evalJson(result, reportFile), null, 2)}\n` : printable(evalText(result, reportFile)));
    });
}

/** Progress on stderr: a rewritten line on a terminal, a line per quarter otherwise. */
function progressPrinter(): (done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  let lastQuarter = 0;
  return (done, total) => {
    if (tty) {
      process.stderr.write(`\reval: ${done}/${total} queries${done === total ? '\n' : ''}`);
    } else if (Math.floor((4 * done) / total) > lastQuarter) {
      lastQuarter = Math.floor((4 * done) / total);
      process.stderr.write(`eval: ${done}/${total} queries\n`);
    }
  };
}

/** What `--json` prints: the figures and their definitions, without per-query detail. */
export function evalJson(result: EvalResult, reportFile?: string) {
  return {
    workspace: result.workspace,
    docs: result.docs,
    chunks: result.chunks,
    queries: result.queries,
    chunkK: result.chunkK,
    unlabelled: result.unlabelled,
    modes: Object.fromEntries(result.modes.map((mode) => [mode, RANKERS[mode].describe])),
    metrics: {
      p1: 'precision@1',
      p5: 'precision@5',
      p10: 'precision@10 (relevant docs among the first 10, divided by 10)',
      ap10: 'mAP@10: mean over queries of (sum of precision@i at relevant ranks i <= 10) / min(relevant docs, 10)',
      ap: 'mAP: mean over queries of the mean precision at the rank of each relevant doc, over the whole ranking',
      rprec: 'R-precision: precision at rank R, R = the relevant docs of the query',
      ties: 'expected value over the orders of tied scores; docs a ranker does not return tie at the bottom',
    },
    overall: result.overall,
    /** Mean docs each mode scored per query; the rest tie at the bottom of its ranking. */
    meanReturned: result.meanReturned,
    classes: result.classes,
    leaky: result.leaky,
    dedupe: result.dedupe,
    duplicates: {
      threshold: result.duplicates.threshold,
      pairs: result.duplicates.pairs.map((p) => ({ a: p.a, b: p.b, score: p.score, files: [result.docPaths[p.a], result.docPaths[p.b]] })),
      groups: result.duplicates.groups,
    },
    report: reportFile ?? null,
    seconds: Math.round(result.seconds * 10) / 10,
  };
}

/** One table: overall then every class, a row per ranking mode. */
export function evalText(result: EvalResult, reportFile?: string): string {
  const header = ['class', 'mode', 'queries', ...METRIC_NAMES.map((m) => METRIC_LABELS[m])];
  const rows: string[][] = [];
  const groups = [{ label: 'ALL', queries: result.queries, metrics: result.overall }, ...result.classes];
  for (const group of groups) {
    for (const mode of result.modes) rows.push([group.label, mode, String(group.queries), ...METRIC_NAMES.map((m) => group.metrics[mode][m].toFixed(3))]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const lines = [
    `Leave-one-out retrieval${result.leaky ? ' (leaky: the query stays in what the index learned)' : ''}${result.dedupe ? ', duplicates of the query dropped' : ''}: ${result.queries} queries over ${result.docs} docs (${result.chunks} chunks), ${result.classes.length} classes, ${result.seconds.toFixed(1)} s`,
    '',
    line(header),
    `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
    '',
    ...result.modes.map(
      (mode) =>
        `${mode}: ${RANKERS[mode].describe}${mode === 'bimatch' ? ` (chunk top-k ${result.chunkK})` : ''}; scores ${result.meanReturned[mode].toFixed(0)} of ${result.docs - 1} docs per query on average.`,
    ),
    'Docs a mode does not score tie at the bottom of its ranking (metrics take the expected value over tie orders): that caps full mAP for BiMatch, whose ranking stops at the docs its chunk top-k reaches.',
    "P@k: share of the first k results in the query's class. AP: mean precision at the ranks of all same-class docs (whole ranking); AP@10 divides by min(R, 10).",
    "expanded is honest unless --leaky: the query doc is left out of every other doc's neighbour list and expanded vector (those are recomputed per query).",
    `Duplicates (whole-image cosine >= ${result.duplicates.threshold}): ${result.duplicates.pairs.length} pairs in ${result.duplicates.groups.length} groups${
      result.duplicates.pairs.length
        ? `, e.g. ${result.duplicates.pairs
            .slice(0, 3)
            .map((p) => `${path.basename(result.docPaths[p.a])} = ${path.basename(result.docPaths[p.b])}`)
            .join(', ')}`
        : ''
    }${result.dedupe ? " (dropped from their twins' candidates)" : " (--dedupe drops them from their twins' candidates)"}.`,
    ...(result.unlabelled ? [`${result.unlabelled} unlabelled docs were ranked but never used as queries nor counted as relevant.`] : []),
    ...(reportFile ? [`report: ${reportFile}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** recall@1 per edit kind, a row per mode. */
export function nearDuplicateText(result: NearDuplicateResult): string {
  const header = ['mode', ...EDIT_KINDS, 'all'];
  const rows = result.modes.map((mode) => [mode, ...[...EDIT_KINDS, 'all' as const].map((k) => result.recall[mode][k].toFixed(3))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  return `${[
    `Near-duplicate queries: ${result.count} edited copies (seed ${result.seed}, ${EDIT_KINDS.map((k) => `${result.perKind[k]} ${k}`).join(', ')}), recall@1 (the source or its duplicate first), ${result.seconds.toFixed(0)} s`,
    '',
    line(header),
    `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n')}\n`;
}
