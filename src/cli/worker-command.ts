/** `flower-native worker`: index jobs from a Postgres store's queue until stopped (SIGINT/SIGTERM finish the job in hand). */
import type { Command } from 'commander';
import { workIndexJobs } from '../flows/fleet.js';
import { encoderOptions, type EncoderCliOptions } from './args.js';
import { printable } from './terminal.js';

interface WorkerCliOptions extends EncoderCliOptions {
  store: string;
  model?: string;
  flow?: string;
  exitWhenIdle?: boolean;
  quiet?: boolean;
}

export function registerWorker(program: Command): void {
  const command = program
    .command('worker')
    .description('encode index jobs from a postgres:// store (run one on every machine of the fleet; they share the work)')
    .requiredOption('-s, --store <url>', 'postgres:// URL of the store `index --store` enqueued the jobs in')
    .option('-m, --model <dir>', "model folder (model.json + .onnx); must be the store's model. Default: the cached default model")
    .option('-f, --flow <file>', "index flow YAML (default: the shipped flows/index.yml); its chunking must be the store's");
  encoderOptions(command, 'encoder workers in this process (overrides the flow)')
    .option('--exit-when-idle', 'exit once the queue has no job waiting or in progress')
    .option('-q, --quiet', 'no line per job')
    .action(async (opts: WorkerCliOptions) => {
      const say = (line: string) => process.stderr.write(printable(`flower-native worker: ${line}\n`));
      const stop = new AbortController();
      const onSignal = () => {
        say('stopping after the job in hand');
        stop.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const summary = await workIndexJobs({
          store: opts.store,
          model: opts.model,
          flow: opts.flow,
          replicas: opts.replicas,
          batchSize: opts.batchSize,
          signal: stop.signal,
          done: () => opts.exitWhenIdle === true,
          onWait: say,
          onTake: (job) => {
            if (!opts.quiet) say(`job ${job.id}: took ${job.data.files.length} images`);
          },
          onJob: (job, out) => {
            if (!opts.quiet) say(`job ${job.id}: ${out.indexed}/${job.data.files.length} images indexed (${out.chunks} chunks)${out.skipped.length ? `, ${out.skipped.length} skipped` : ''}`);
          },
          onJobError: (job, error) => say(`job ${job.id} failed (it is retried): ${error.message.split('\n')[0]}`),
        });
        if (!opts.quiet) say(`done: ${summary.jobs} jobs, ${summary.indexed} images, ${summary.chunks} chunks in ${summary.seconds.toFixed(1)} s`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
