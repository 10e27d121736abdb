/** `flower-native quantize`: a calibrated int8 QDQ copy of a float model, as a model folder of its own. */
import type { Command } from 'commander';
import { CALIBRATION_METHODS, DEFAULT_CALIBRATION_IMAGES, DEFAULT_CALIBRATION_METHOD, quantizeModel, type CalibrationMethod } from '../model/quantize.js';
import { finiteNumber, oneOf, positiveInt } from './args.js';
import { printable } from './terminal.js';

interface QuantizeCliOptions {
  model: string;
  calibrate: string;
  out?: string;
  images: number;
  method: CalibrationMethod;
  percentile?: number;
}

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('write a static int8 (QDQ) copy of a float model, calibrated on a folder of images; index and query with it through --model <out>')
    .requiredOption('-m, --model <dir>', 'float model folder (model.json + .onnx)')
    .requiredOption('-c, --calibrate <dir>', 'folder of calibration images, like the ones you will index')
    .option('-o, --out <dir>', 'output model folder (default: <model>-int8)')
    .option('--images <n>', 'calibration images, spread evenly over the folder', positiveInt, DEFAULT_CALIBRATION_IMAGES)
    .option('--method <name>', `activation ranges (${CALIBRATION_METHODS.join(', ')})`, oneOf(CALIBRATION_METHODS), DEFAULT_CALIBRATION_METHOD)
    .option('--percentile <p>', 'percent of activation values the percentile method keeps in range (default 99.999)', finiteNumber)
    .action(async (options: QuantizeCliOptions) => {
      const started = performance.now();
      let lastStage = '';
      const result = await quantizeModel({
        modelDir: options.model,
        calibrationDir: options.calibrate,
        outDir: options.out,
        images: options.images,
        method: options.method,
        percentile: options.percentile,
        onProgress: (stage, done, total) => {
          if (stage !== lastStage || done === total) process.stderr.write(`quantize: ${stage} ${done}/${total}\n`);
          lastStage = stage;
        },
      });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      process.stdout.write(
        printable(
          [
            `wrote ${result.file} (${(result.bytes / 1e6).toFixed(1)} MB, sha256 ${result.sha256})`,
            `from the float model sha256 ${result.source}: ${result.quantizedNodes} Conv/Add nodes quantized, ${result.foldedClips} Clips folded`,
            `calibrated on ${result.images} images (${result.chunks} chunks, ${options.method}) in ${seconds} s`,
            `use it with --model ${result.outDir}`,
          ].join('\n') + '\n',
        ),
      );
    });
}
