/**
 * The encoder alone per index flow, in images/s: the crop flow's chunks (every window cut and
 * encoded, plus the whole image squashed) against region pooling (one pass of the shape-dynamic
 * model over each resized image, the windows and the whole chunk GeM-pooled from its feature map),
 * on the same fixture images, at the index flow's pool setting (2 × 1, batch 16), alternating rounds
 * so a neighbour's load hits both alike. Also what the pooling itself costs (TS, main thread)
 * against the encoder pass that made the map: the reason it has no native kernel.
 */
import * as ort from 'onnxruntime-node';
import { EncoderPool } from '../src/encoder/index.js';
import { decodeImage, resizeExact } from '../src/image/index.js';
import { kernels, slidingWindows, type Box } from '../src/kernels/index.js';
import { gemPool, regionCells } from '../src/kernels/region-pool.js';
import { dynamicShapeModel } from '../src/model/dynamic.js';
import { loadModel } from '../src/model/index.js';
import { spread } from './e2e.js';
import { timeRun } from './encoder.js';
import { flowerImage, modelDir } from './fixtures.js';
import type { SectionOptions, SectionResult } from './section.js';
import { formatSummary, markdownTable, median, summarize, summarizeRatio } from './stats.js';

const LAYOUT = { replicas: 2, intraOpThreads: 1, batchSize: 16 } as const;

interface Prepared {
  /** Whole-image chunks, one per image, 224 × 224. */
  readonly whole: Float32Array;
  /** Every window of every image, 224 × 224 (the crop flow's). */
  readonly windows: Float32Array;
  readonly windowCount: number;
  /** The resized images as tensors, with their windows and the whole image as the last box (the region flow's). */
  readonly images: { readonly tensor: Float32Array; readonly width: number; readonly height: number; readonly boxes: Box[] }[];
}

async function prepare(count: number, norm: Parameters<typeof kernels.extractChunks>[2]): Promise<Prepared> {
  const chunk = 3 * 224 * 224;
  const images: Prepared['images'][number][] = [];
  const whole = new Float32Array(count * chunk);
  const windowParts: Float32Array[] = [];
  for (const [i, n] of spread(count, 1360, 17).entries()) {
    const image = await decodeImage(flowerImage(n), { shorterSide: 256 });
    const windowBoxes = slidingWindows(image.width, image.height, 224, 112);
    const all = { x: 0, y: 0, width: image.width, height: image.height };
    const tensor = new Float32Array(3 * image.width * image.height);
    kernels.extractChunks(image, [all], norm, tensor, 0);
    images.push({ tensor, width: image.width, height: image.height, boxes: [...windowBoxes, all] });
    const windows = new Float32Array(windowBoxes.length * chunk);
    kernels.extractChunks(image, windowBoxes, norm, windows, 0);
    windowParts.push(windows);
    kernels.extractChunks(await resizeExact(image, 224, 224), [{ x: 0, y: 0, width: 224, height: 224 }], norm, whole, i);
  }
  const windowCount = windowParts.reduce((sum, w) => sum + w.length / chunk, 0);
  const windows = new Float32Array(windowCount * chunk);
  windowParts.reduce((offset, w) => (windows.set(w, offset), offset + w.length), 0);
  return { whole, windows, windowCount, images };
}

/** Region pooling: every image's one pass queued at once (its windows and whole chunk pooled from it). */
async function encodeRegionFlow(pool: EncoderPool, data: Prepared): Promise<void> {
  await Promise.all(data.images.map((image) => pool.encodeRegions(image.tensor.slice(), 1, image.height, image.width, [image.boxes])));
}

async function timed(fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await fn();
  const cpu = process.cpuUsage(cpuStart);
  return { wall: (performance.now() - start) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

export async function benchEncoderFlows(options: SectionOptions & { readonly images?: number }): Promise<SectionResult> {
  const count = options.quick ? 34 : 136;
  const runs = options.runs;
  const model = await loadModel(modelDir);
  const dynamic = dynamicShapeModel(model.bytes, model.embedding.name);
  options.log(`encoder per flow: preparing ${count} fixture images`);
  const data = await prepare(count, model.input.norm);
  // The crop flow's chunks: every window, then every whole image.
  const cropChunks = new Float32Array(data.windows.length + data.whole.length);
  cropChunks.set(data.windows);
  cropChunks.set(data.whole, data.windows.length);
  const crops = await EncoderPool.open({ model, ...LAYOUT });
  const regions = await EncoderPool.open({ model: { ...model, bytes: dynamic.bytes }, features: { name: dynamic.features, stride: dynamic.stride }, ...LAYOUT });
  const rate = { crops: [] as number[], regions: [] as number[] };
  const cpu = { crops: [] as number[], regions: [] as number[] };
  try {
    for (let run = 0; run < runs + 1; run++) {
      const a = await timeRun(crops, cropChunks, LAYOUT.batchSize);
      const b = await timed(() => encodeRegionFlow(regions, data));
      if (run === 0) continue; // warm-up round: sessions' first shapes
      rate.crops.push(count / a.wall);
      rate.regions.push(count / b.wall);
      cpu.crops.push((a.cpu * 1000) / count);
      cpu.regions.push((b.cpu * 1000) / count);
      options.log(`encoder per flow: run ${run}/${runs}: crops ${rate.crops.at(-1)!.toFixed(1)}, regions ${rate.regions.at(-1)!.toFixed(1)} images/s`);
    }
  } finally {
    await crops.close();
    await regions.close();
  }

  // The pooling alone, on real maps: TS gemPool per image against one encoder pass over that image.
  const session = await ort.InferenceSession.create(dynamic.bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const poolMs: number[] = [];
  const passMs: number[] = [];
  for (const image of data.images.slice(0, 17)) {
    const input = new ort.Tensor('float32', image.tensor, [1, 3, image.height, image.width]);
    const start = performance.now();
    const map = (await session.run({ [model.input.name]: input }, [dynamic.features]))[dynamic.features];
    passMs.push(performance.now() - start);
    const [, channels, h, w] = map.dims;
    const cells = image.boxes.map((box) => regionCells(box, image.width, image.height, w, h, dynamic.stride));
    const out = new Float32Array(cells.length * channels);
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) gemPool(map.data as Float32Array, 0, channels, h, w, cells, 3, out, 0);
    poolMs.push((performance.now() - t0) / 20);
  }
  await session.release();

  const speedup = summarizeRatio(rate.regions, rate.crops);
  const figures = {
    images: count,
    windows: data.windowCount,
    layout: LAYOUT,
    crops: { imagesPerSecond: summarize(rate.crops), cpuMsPerImage: summarize(cpu.crops) },
    regions: { imagesPerSecond: summarize(rate.regions), cpuMsPerImage: summarize(cpu.regions) },
    speedup,
    pooling: { msPerImage: median(poolMs), passMsPerImage: median(passMs) },
  };
  const markdown = [
    `The encoder alone per index flow: ${count} fixture images (${data.windowCount} windows + ${count} whole-image chunks), pool ${LAYOUT.replicas} × ${LAYOUT.intraOpThreads}, batch ${LAYOUT.batchSize}, the two alternating in ${runs} rounds (after one warm-up round):`,
    '',
    markdownTable(
      ['flow', 'encoder passes per image', 'images/s', 'CPU ms/image', '÷ crops'],
      [
        ['crops (flows/index-crops.yml)', (1 + data.windowCount / count).toFixed(2), formatSummary(figures.crops.imagesPerSecond), formatSummary(figures.crops.cpuMsPerImage, 0), '1'],
        ['regions (flows/index-regions.yml)', '1 image pass', formatSummary(figures.regions.imagesPerSecond), formatSummary(figures.regions.cpuMsPerImage, 0), formatSummary(speedup, 2)],
      ],
    ),
    '',
    `GeM pooling of an image's windows (TS, main thread): ${figures.pooling.msPerImage.toFixed(3)} ms per image against ${figures.pooling.passMsPerImage.toFixed(1)} ms for the one-thread encoder pass that made its map (${((100 * figures.pooling.msPerImage) / figures.pooling.passMsPerImage).toFixed(2)} %): not worth a native kernel.`,
  ].join('\n');
  return { data: figures, markdown };
}
