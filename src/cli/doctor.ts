/** `flower-native doctor`: what this installation runs on. */
import type { Command } from 'commander';
import { encoderInfo } from '../encoder/index.js';
import { imageInfo } from '../image/index.js';
import { kernelInfo } from '../kernels/index.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('show the active kernels and SIMD level, onnxruntime and its thread settings, sharp and libvips')
    .option('--json', 'print machine-readable JSON')
    .action((opts: { json?: boolean }) => {
      const report = { node: process.version, platform: `${process.platform}-${process.arch}`, kernels: kernelInfo(), encoder: encoderInfo(), image: imageInfo() };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const { kernels, encoder, image } = report;
      process.stdout.write(
        [
          `node        ${report.node} (${report.platform})`,
          `kernels     ${kernels.kernels}, SIMD ${kernels.simd}${kernels.simdSupported ? ` (supported: ${kernels.simdSupported.join(', ')})` : ''}${kernels.threads ? `, ${kernels.threads} top-k threads` : ''}${kernels.addon ? `, from ${kernels.addon}` : ''}` +
            (kernels.tried ? ' - native addon did not load:' : kernels.reason ? ` - ${kernels.reason}` : ''),
          ...(kernels.tried ?? []).map(({ file, source, error }) => `              ${file} (${source}): ${error}`),
          `onnxruntime ${encoder.onnxruntime}, ${encoder.cores} cores: ${encoder.settings.replicas} replica(s) x ${encoder.settings.intraOpThreads} intra-op thread(s), batch ${encoder.settings.batchSize}`,
          `            session options ${JSON.stringify(encoder.session)}`,
          `sharp       ${image.sharp}, libvips ${image.libvips}, concurrency ${image.concurrency}, cache ${image.cache ? 'on' : 'off'}`,
        ].join('\n') + '\n',
      );
    });
}
