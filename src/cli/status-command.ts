/** `flower-native status`: a Postgres store's fleet (jobs done / queued / failed, images/s) and the latest run's failures. */
import type { Command } from 'commander';
import { fleetStatus, type FleetStatus } from '../flows/fleet.js';
import { positiveInt } from './args.js';
import { printable } from './terminal.js';

interface StatusCliOptions {
  store: string;
  json?: boolean;
  failures: number;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('progress of the index jobs of a postgres:// store: done / queued / failed images, images/s, failures with reasons')
    .requiredOption('-s, --store <url>', 'postgres:// URL of the store')
    .option('--json', 'print the status as JSON')
    .option('--failures <n>', 'failures to list (default 50)', positiveInt, 50)
    .action(async (opts: StatusCliOptions) => {
      const status = await fleetStatus(opts.store, { failureLimit: opts.failures });
      process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : printable(formatStatus(status)));
    });
}

export function formatStatus(s: FleetStatus & { location: string }): string {
  const lines = [`store ${s.location}: ${s.store.docs} images, ${s.store.chunks} chunks`];
  const c = s.latestRun?.counts;
  if (!s.latestRun || !c) lines.push('no index run has enqueued jobs here yet');
  else {
    lines.push(`latest run ${s.latestRun.run} (started ${s.latestRun.started}): ${c.files} images in ${c.jobs} jobs`);
    lines.push(`  done ${c.done} (${c.indexed} indexed, ${c.chunks} chunks), queued ${c.queued}, in progress ${c.active}, failed ${c.failed}${c.failedJobs ? ` (${c.failedJobs} jobs gave up)` : ''}`);
    lines.push(`  ${c.imagesPerSecond.toFixed(1)} images/s over the last minute`);
  }
  if (s.all.jobs !== c?.jobs) lines.push(`all runs: done ${s.all.done}, queued ${s.all.queued}, in progress ${s.all.active}, failed ${s.all.failed}, ${s.all.imagesPerSecond.toFixed(1)} images/s`);
  if (s.retrying.length) {
    lines.push(`jobs waiting to be retried (${s.retrying.length}):`);
    for (const j of s.retrying) lines.push(`  ${j.files[0]}${j.files.length > 1 ? ` and ${j.files.length - 1} more` : ''}: attempt ${j.attempts} of ${j.maxAttempts} failed: ${j.reason}`);
  }
  if (s.failureCount) {
    lines.push(`failures of the latest run (${s.failureCount}${s.failureCount > s.failures.length ? `, first ${s.failures.length}` : ''}):`);
    for (const f of s.failures) lines.push(`  ${f.file}: ${f.reason}`);
  }
  return `${lines.join('\n')}\n`;
}
