/** `flower-native query`: rank the indexed images against one or more query images. */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { openIndex, type QueryResult } from '../flows/search.js';
import { DEFAULT_RANK_MODE, EXACT_BELOW_CHUNKS, RANK_MODES, RANKERS, type RankMode } from '../search/index.js';
import { finiteNumber, oneOf, positiveInt } from './args.js';
import { printable } from './terminal.js';

interface QueryCliOptions {
  workspace?: string;
  store?: string;
  exact?: boolean;
  top: number;
  minScore?: number;
  mode: RankMode;
  json?: boolean;
  model?: string;
  flow?: string;
  doc?: string[];
}

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('find the indexed images most similar to each query image')
    .argument('[images...]', 'query image files')
    .option('-w, --workspace <dir>', 'indexed workspace')
    .option('--store <dir|url>', 'the index: a workspace folder or a postgres:// URL (instead of --workspace)')
    .option('--exact', `Postgres store: exact chunk search whatever its size (default: exact below ${EXACT_BELOW_CHUNKS} chunks, HNSW above)`)
    .option('-k, --top <n>', 'results per query', positiveInt, 10)
    .option('--min-score <s>', 'leave out results scoring below s (expanded: a cosine in [-1, 1], 0.5 = a 50% match; BiMatch: [0, 1])', finiteNumber)
    .option('--doc <id|path>', "more like this: query with an indexed doc's stored vectors (no encoding); repeatable", (value: string, list: string[] = []) => [...list, value])
    .option('--mode <mode>', `ranking: ${RANK_MODES.join(', ')}`, oneOf(RANK_MODES), DEFAULT_RANK_MODE)
    .option('--json', 'print machine-readable JSON')
    .option('-m, --model <dir>', 'model folder (default: the one the workspace was built with)')
    .option('-f, --flow <file>', 'query flow YAML (default: the shipped flows/query.yml)')
    .action(async (images: string[], opts: QueryCliOptions, command: Command) => {
      if (images.length === 0 && !opts.doc?.length) command.error('error: give query images, or --doc <id|path> for an indexed one');
      const store = opts.store ?? opts.workspace ?? command.error("error: required option '-w, --workspace <dir>' or '--store <dir|url>' not specified");
      const searcher = await openIndex(store, { model: opts.model, flow: opts.flow, exact: opts.exact, onNotice: (message) => process.stderr.write(printable(`flower-native query: ${message}\n`)) });
      if (command.getOptionValueSource('mode') === 'default') opts.mode = searcher.defaultMode;
      const results: QueryResult[] = [];
      const failures: { query: string; error: string }[] = [];
      const search = { top: opts.top, minScore: opts.minScore, mode: opts.mode };
      const queries = [...(opts.doc ?? []).map((doc) => () => searcher.searchDoc(doc, search)), ...images.map((image) => () => searcher.search(image, search))];
      const names = [...(opts.doc ?? []), ...images];
      try {
        // One after another: the output order is the argument order, and the encoder is warm after the first.
        for (const [i, query] of queries.entries()) {
          try {
            results.push(await query());
          } catch (err) {
            if (!(err instanceof InputError)) throw err;
            failures.push({ query: names[i], error: (err as Error).message });
          }
        }
      } finally {
        await searcher.close();
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ workspace: searcher.workspace.dir, mode: opts.mode, score: RANKERS[opts.mode].score, queries: results, errors: failures }, null, 2)}\n`);
      } else {
        process.stdout.write(printable(results.map((result) => formatResult(result, opts.mode)).join('\n')));
        for (const failure of failures) process.stderr.write(printable(`flower-native query: ${failure.error}\n`));
      }
      if (failures.length) process.exitCode = 1;
    });
}

export function formatResult(result: QueryResult, mode: RankMode): string {
  const t = result.timings;
  const lines = [`query ${result.query} (${RANKERS[mode].score}; decode ${t.decode.toFixed(0)} ms, encode ${t.encode.toFixed(0)} ms, top-k ${t.topk.toFixed(0)} ms, rank ${t.rank.toFixed(1)} ms)`];
  if (result.results.length === 0) lines.push('  no result above --min-score');
  else {
    lines.push(`  ${'rank'.padStart(4)}  ${(mode === 'expanded' ? 'match' : 'score').padEnd(8)}  ${'label'.padEnd(14)}  ${'best match box'.padEnd(20)}  path`);
    for (const hit of result.results) {
      const box = `${hit.box.width}x${hit.box.height}+${hit.box.x}+${hit.box.y}`;
      const score = mode === 'expanded' ? `${matchPercent(hit.score)}%`.padStart(4) + (hit.samePhoto === undefined ? '    ' : ' =  ') : hit.score.toFixed(6);
      lines.push(`  ${String(hit.rank).padStart(4)}  ${score.padEnd(8)}  ${(hit.label ?? '-').padEnd(14)}  ${box.padEnd(20)}  ${hit.path}`);
    }
  }
  if (mode === 'expanded' && result.results.some((hit) => hit.samePhoto !== undefined)) lines.push('  = the same photo as the query (an edited or identical copy)');
  return `${lines.join('\n')}\n`;
}

/** A cosine as a match percentage: 100 · max(0, score), rounded. */
export function matchPercent(score: number): number {
  return Math.round(100 * Math.max(0, score));
}
