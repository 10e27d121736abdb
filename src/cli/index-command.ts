/** `flower-native index`: add a folder of images to a workspace. */
import type { Command } from 'commander';
import { indexImagesIntoPostgres, isPostgresUrl } from '../flows/fleet.js';
import { indexImages, type IndexSummary } from '../flows/indexing.js';
import { encoderOptions, positiveInt, type EncoderCliOptions } from './args.js';
import { downloadReporter, progressReporter } from './progress.js';
import { printable } from './terminal.js';

interface IndexCliOptions extends EncoderCliOptions {
  data?: string;
  model?: string;
  workspace?: string;
  store?: string;
  work: boolean;
  jobSize?: number;
  jobTimeout?: number;
  flow?: string;
  rebuild?: boolean;
  keepMissing?: boolean;
  quiet?: boolean;
}

export function registerIndex(program: Command): void {
  const command = program
    .command('index')
    .description('index a folder of images (recursively) into a workspace; re-runs add only new images')
    .option('-w, --workspace <dir>', 'workspace directory (created when missing)')
    .option('-s, --store <url|dir>', 'where the index lives: a workspace directory, or a postgres:// URL (PostgreSQL + pgvector, shared by `worker`s on other machines)')
    .option('--no-work', 'Postgres store: enqueue the jobs and follow the fleet, but leave the encoding to `worker`s')
    .option('--job-size <n>', 'Postgres store: images per job (default 32)', positiveInt)
    .option('--job-timeout <s>', 'Postgres store: seconds before a job taken by a worker that went silent is redone by another (default 300)', positiveInt)
    .option(
      '-d, --data <dir|file>',
      'folder of images, with an optional labels.csv (file,class_id,class_name); with a postgres:// store also a text file of http(s) image URLs, one per line; default: the 17 flowers dataset, downloaded to the cache',
    )
    .option('-m, --model <dir>', 'model folder (model.json + .onnx); default: the cached default model, downloaded when missing')
    .option('-f, --flow <file>', 'index flow YAML (default: the shipped flows/index.yml)')
    .option('--rebuild', 'start the index over (the old one stays readable until the new one is complete)')
    .option('--keep-missing', 'keep the images whose files are gone from the folder (by default a re-run removes them from the index)')
    .option('-q, --quiet', 'no progress and no summary');
  encoderOptions(command).action(async function (this: Command, opts: IndexCliOptions) {
    const store = opts.store ?? opts.workspace;
    if (!store) this.error('error: index needs --workspace <dir> or --store <url|dir>', { exitCode: 2 });
    const mode = opts.quiet ? 'none' : process.stderr.isTTY ? 'bar' : 'plain';
    // Without --data/--model the defaults come from the cache, downloaded (with progress) when missing.
    const download = downloadReporter(mode);
    const progress = progressReporter(mode);
    let summary: IndexSummary;
    try {
      const onProgress = (p: Parameters<typeof progress.update>[0]) => {
        download.stop(); // the downloads, if any, are over once images are being indexed
        progress.update(p);
      };
      const shared = { data: opts.data, model: opts.model, download, flow: opts.flow, keepMissing: opts.keepMissing, replicas: opts.replicas, batchSize: opts.batchSize, onProgress };
      if (isPostgresUrl(store)) {
        const onWait = (message: string) => process.stderr.write(printable(`flower-native index: ${message}\n`));
        summary = await indexImagesIntoPostgres({ ...shared, store, work: opts.work, jobSize: opts.jobSize, jobTimeoutSeconds: opts.jobTimeout, onWait, onNotice: onWait });
      } else summary = await indexImages({ ...shared, workspace: store, rebuild: opts.rebuild });
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
