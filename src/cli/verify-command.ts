/** `flower-native verify`: report what is damaged in a workspace, and with --repair drop the damaged docs. */
import type { Command } from 'commander';
import { Workspace, type DocRecord, type IntegrityReport } from '../store/index.js';
import { printable } from './terminal.js';

interface VerifyCliOptions {
  workspace: string;
  json?: boolean;
  repair?: boolean;
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check a workspace for damage (chunk rows against their checksums, NaN/zero rows, index.sqlite, the files agreeing); exits 1 when damaged')
    .requiredOption('-w, --workspace <dir>', 'workspace directory')
    .option('--json', 'print the report as JSON')
    .option('--repair', 'drop the docs whose rows are damaged (the next index run encodes their files again); a damaged index.sqlite needs `index --rebuild`')
    .action((opts: VerifyCliOptions) => {
      let report = Workspace.verify(opts.workspace);
      let repaired: DocRecord[] | undefined;
      if (opts.repair && report.files.length === 0 && report.damagedDocs.length > 0) {
        repaired = Workspace.dropDamagedDocs(opts.workspace);
        report = Workspace.verify(opts.workspace);
      }
      if (opts.json) process.stdout.write(`${JSON.stringify({ ...report, ...(repaired && { repaired: repaired.map((d) => ({ path: d.path, sha256: d.sha256 })) }) }, null, 2)}\n`);
      else process.stdout.write(printable(formatReport(report, repaired)));
      if (!report.ok) process.exitCode = 1;
    });
}

export function formatReport(r: IntegrityReport, repaired?: readonly DocRecord[]): string {
  const lines = [`workspace ${r.workspace}: ${r.docs} images, ${r.rows} chunk rows`];
  if (repaired) {
    lines.push(`repaired: dropped ${repaired.length} damaged images (the next \`flower-native index\` run encodes them again):`);
    for (const d of repaired) lines.push(`  ${d.path}`);
  }
  if (r.files.length > 0) {
    lines.push('damaged files:');
    for (const problem of r.files) lines.push(`  ${problem}`);
  }
  if (r.damagedDocs.length > 0) {
    lines.push(`damaged images: ${r.damagedDocs.length}`);
    for (const d of r.damagedDocs) lines.push(`  doc ${d.id} ${d.path} (rows ${d.firstRow}..${d.firstRow + d.rows - 1}): ${d.problems.join('; ')}`);
  }
  if (r.unchecksummed > 0) lines.push(`${r.unchecksummed} images were indexed before checksums: their rows were checked for NaN, zero and non-unit values only`);
  if (r.ok) lines.push('ok: nothing damaged');
  else if (r.files.length > 0) lines.push(`damaged: re-index with \`flower-native index --rebuild --workspace ${r.workspace}\``);
  else lines.push(`damaged: \`flower-native verify --repair --workspace ${r.workspace}\` drops the damaged images (the next index run encodes them again), or re-index with --rebuild`);
  return `${lines.join('\n')}\n`;
}
