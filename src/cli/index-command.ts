/** `flower-native index`: add a folder of images to a workspace. */
import type { Command } from 'commander';
import { indexImages, type IndexSummary } from '../flows/indexing.js';
import { positiveInt } from './args.js';
import { downloadReporter, progressReporter } from './progress.js';
import { printable } from './terminal.js';

interface IndexCliOptions {
  data?: string;
  model?: string;
  workspace: string;
  flow?: string;
  rebuild?: boolean;
  keepMissing?: boolean;
  quiet?: boolean;
  replicas?: number;
  batchSize?: number;
}

export function registerIndex(program: Command): void {
  program
    .command('index')
    .description('index a folder of images (recursively) into a workspace; re-runs add only new images')
    .requiredOption('-w, --workspace <dir>', 'workspace directory (created when missing)')
    .option('-d, --data <dir>', 'folder of images, with an optional labels.csv (file,class_id,class_name); default: the 17 flowers dataset, downloaded to the cache')
    .option('-m, --model <dir>', 'model folder (model.json + .onnx); default: the cached default model, downloaded when missing')
    .option('-f, --flow <file>', 'index flow YAML (default: the shipped flows/index.yml)')
    .option('--rebuild', 'start the index over (the old one stays readable until the new one is complete)')
    .option('--keep-missing', 'keep the images whose files are gone from the folder (by default a re-run removes them from the index)')
    .option('-q, --quiet', 'no progress and no summary')
    .option('--replicas <n>', 'encoder workers (overrides the flow)', positiveInt)
    .option('--batch-size <n>', 'chunks per encoder batch (overrides the flow)', positiveInt)
    .action(async (opts: IndexCliOptions) => {
      const mode = opts.quiet ? 'none' : process.stderr.isTTY ? 'bar' : 'plain';
      // Without --data/--model the defaults come from the cache, downloaded (with progress) when missing.
      const download = downloadReporter(mode);
      const progress = progressReporter(mode);
      let summary: IndexSummary;
      try {
        summary = await indexImages({
          data: opts.data,
          workspace: opts.workspace,
          model: opts.model,
          download,
          flow: opts.flow,
          rebuild: opts.rebuild,
          keepMissing: opts.keepMissing,
          replicas: opts.replicas,
          batchSize: opts.batchSize,
          onProgress: (p) => {
            download.stop(); // the downloads, if any, are over once images are being indexed
            progress.update(p);
          },
        });
      } finally {
        download.stop();
        progress.stop();
      }
      if (!opts.quiet) process.stdout.write(printable(formatSummary(summary)));
      // Nothing usable in the folder is a failure; a re-run that finds everything indexed is not.
      if (summary.indexed + summary.unchanged === 0) {
        process.stderr.write(`flower-native index: no image in the folder could be indexed${summary.files === 0 ? ' (no image files found)' : ''}\n`);
        process.exitCode = 1;
      }
    });
}

export function formatSummary(s: IndexSummary): string {
  const lines = [
    `indexed ${s.indexed} images (${s.chunks} chunks) in ${s.seconds.toFixed(1)} s: ${s.imagesPerSecond.toFixed(1)} images/s`,
    `already indexed: ${s.unchanged}, skipped: ${s.skipped.length}, image files found: ${s.files}`,
  ];
  if (s.skipped.length) {
    lines.push('skipped files:');
    for (const { file, reason } of s.skipped) lines.push(`  ${file}: ${reason}`);
  }
  if (s.moved.length || s.removed.length) lines.push(`moved: ${s.moved.length}, removed (files gone from the folder): ${s.removed.length}`);
  for (const { from, to } of s.moved) lines.push(`  moved ${from} -> ${to}`);
  for (const { file } of s.removed) lines.push(`  removed ${file}`);
  lines.push(`workspace ${s.workspace} now holds ${s.total.docs} images, ${s.total.chunks} chunks`);
  return `${lines.join('\n')}\n`;
}
