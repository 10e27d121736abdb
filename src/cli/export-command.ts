/** `flower-native export`: push a local workspace's index into a postgres:// store (no re-encoding; re-runs write only what is new). */
import type { Command } from 'commander';
import { exportWorkspace } from '../flows/export.js';
import { printable } from './terminal.js';

interface ExportCliOptions {
  workspace: string;
  store: string;
  quiet?: boolean;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description("copy a workspace's index (docs, chunk boxes and vectors) into a postgres:// store, without re-encoding; docs the store has are skipped")
    .requiredOption('-w, --workspace <dir>', 'workspace directory')
    .requiredOption('-s, --store <url>', 'postgres:// URL of the store (created when empty)')
    .option('-q, --quiet', 'no summary')
    .action(async (opts: ExportCliOptions) => {
      const onNotice = (message: string) => process.stderr.write(printable(`flower-native export: ${message}\n`));
      const s = await exportWorkspace({ workspace: opts.workspace, store: opts.store, onNotice });
      if (!opts.quiet) {
        process.stdout.write(
          printable(
            `exported ${s.added} of ${s.docs} images (${s.chunks} chunk rows, ${s.rowsPerSecond.toFixed(0)} rows/s) from ${s.workspace} in ${s.seconds.toFixed(1)} s; ` +
              `${s.docs - s.added} were in the store already\nstore ${s.store} now holds ${s.total.docs} images, ${s.total.chunks} chunks\n`,
          ),
        );
      }
    });
}
