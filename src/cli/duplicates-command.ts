/** `flower-native duplicates`: groups of near-identical images in an index (exact copies, re-encodes, resized copies). */
import type { Command } from 'commander';
import { openIndex } from '../flows/search.js';
import { DEFAULT_DUPLICATE_THRESHOLD } from '../search/index.js';
import { finiteNumber } from './args.js';
import { printable } from './terminal.js';

interface DuplicatesCliOptions {
  workspace: string;
  threshold: number;
  json?: boolean;
}

export function registerDuplicates(program: Command): void {
  program
    .command('duplicates')
    .description('groups of near-identical images in the index: exact copies, re-encodes, resized copies (edited copies are found by query instead)')
    .requiredOption('-w, --workspace <dir>', 'indexed workspace')
    .option(
      '-t, --threshold <t>',
      `whole-image cosine at which two images are duplicates (measured: all of the fixture's exact copies >= 0.9936, the nearest distinct pair 0.965)`,
      finiteNumber,
      DEFAULT_DUPLICATE_THRESHOLD,
    )
    .option('--json', 'print machine-readable JSON')
    .action(async (opts: DuplicatesCliOptions) => {
      const searcher = await openIndex(opts.workspace);
      try {
        const found = searcher.duplicates(opts.threshold);
        const doc = (id: number) => searcher.workspace.doc(id)!;
        const score = new Map(found.pairs.map((p) => [`${p.a}:${p.b}`, p.score]));
        const groups = found.groups.map((ids) => ({
          docs: ids.map((id) => ({ docId: id, path: doc(id).path, label: doc(id).label, width: doc(id).width, height: doc(id).height })),
          /** The lowest cosine of a pair found inside the group. */
          minScore: Math.min(...ids.flatMap((a) => ids.map((b) => score.get(`${a}:${b}`) ?? Infinity))),
        }));
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ workspace: searcher.workspace.dir, threshold: found.threshold, groups, pairs: found.pairs }, null, 2)}\n`);
          return;
        }
        const lines = [
          `${groups.length} groups of near-identical images (${groups.reduce((n, g) => n + g.docs.length, 0)} images; whole-image cosine >= ${found.threshold}) in ${searcher.workspace.dir}`,
        ];
        groups.forEach((group, i) => {
          lines.push(`group ${i + 1} (cosine >= ${group.minScore.toFixed(4)})`);
          for (const d of group.docs) lines.push(`  ${String(d.docId).padStart(6)}  ${`${d.width}x${d.height}`.padEnd(10)}  ${d.path}`);
        });
        process.stdout.write(printable(`${lines.join('\n')}\n`));
      } finally {
        await searcher.close();
      }
    });
}
