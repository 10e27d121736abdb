/**
 * Region pooling (issue 11): the shape-dynamic model, the GeM pooling against a plain reference,
 * and the index-regions flow end to end (same index layout as the crop flow, queries follow it).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import * as ort from 'onnxruntime-node';
import { EncoderPool } from '../src/encoder/index.js';
import { indexImages, openIndex } from '../src/index.js';
import { decodeImage, resizeExact } from '../src/image/index.js';
import { kernels, slidingWindows, type Box } from '../src/kernels/index.js';
import { gemPool, regionCells } from '../src/kernels/region-pool.js';
import { dynamicShapeModel } from '../src/model/dynamic.js';
import { loadModel, type LoadedModel } from '../src/model/index.js';
import { Workspace } from '../src/store/index.js';
import { builtinFlowsDir, loadFlow } from '../src/flows/spec.js';
import { flowerImage, modelDir } from '../bench/fixtures.js';
import { makeDataDir, subset, tempDir } from './e2e-helpers.js';

let model: LoadedModel;
let dynamic: ReturnType<typeof dynamicShapeModel>;

test.before(async () => {
  model = await loadModel(modelDir);
  dynamic = dynamicShapeModel(model.bytes, model.embedding.name);
});

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

function tensorOf(image: { width: number; height: number } & Parameters<typeof kernels.extractChunks>[0]): ort.Tensor {
  const data = new Float32Array(3 * image.width * image.height);
  kernels.extractChunks(image, [{ x: 0, y: 0, width: image.width, height: image.height }], model.input.norm, data, 0);
  return new ort.Tensor('float32', data, [1, 3, image.height, image.width]);
}

test('the dynamic-shape model: every stride-2 conv SAME_UPPER, 32 px per cell, and on a 224x224 input the original embedding within 1e-5', async (t) => {
  t.is(dynamic.samePadded, 5);
  t.is(dynamic.stride, 32);
  t.is(dynamic.channels, 1280);
  const original = await session(model.bytes);
  const edited = await session(dynamic.bytes);
  for (const n of [1, 500, 1234]) {
    const input = tensorOf(await resizeExact(await decodeImage(flowerImage(n), { shorterSide: 256 }), 224, 224));
    const a = (await original.run({ [model.input.name]: input }, [model.embedding.name]))[model.embedding.name].data as Float32Array;
    const out = await edited.run({ [model.input.name]: input }, [dynamic.embedding, dynamic.features]);
    const b = out[dynamic.embedding].data as Float32Array;
    t.deepEqual(out[dynamic.features].dims, [1, 1280, 7, 7]);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    t.true(worst <= 1e-5, `image ${n}: max |difference| ${worst}`);
  }
});

test('the dynamic-shape model takes any size: odd and even sides give ceil(side / 32) cells', async (t) => {
  const edited = await session(dynamic.bytes);
  for (const [height, width] of [
    [256, 341],
    [257, 384],
    [224, 225],
  ]) {
    const input = new ort.Tensor('float32', new Float32Array(3 * height * width).fill(0.1), [1, 3, height, width]);
    const out = (await edited.run({ [model.input.name]: input }, [dynamic.features]))[dynamic.features];
    t.deepEqual(out.dims, [1, 1280, Math.ceil(height / 32), Math.ceil(width / 32)]);
  }
  // The original model's fixed pads refuse (or mis-shape) what SAME_UPPER handles.
  const original = await session(model.bytes);
  await t.throwsAsync(() => original.run({ [model.input.name]: new ort.Tensor('float32', new Float32Array(3 * 256 * 341), [1, 3, 256, 341]) }, [model.embedding.name]));
});

test('regionCells: 7x7 cells per 224 px window, the snapped last window ends at the map border, no two windows of a 256x341 image alike, the whole image all of the map', (t) => {
  const boxes = slidingWindows(341, 256, 224, 112);
  const cells = boxes.map((box) => regionCells(box, 341, 256, 11, 8, 32));
  t.deepEqual(
    boxes.map((box) => `${box.x},${box.y}`),
    ['0,0', '112,0', '117,0', '0,32', '112,32', '117,32'],
  );
  t.deepEqual(
    cells.map((c) => `${c.x},${c.y} ${c.width}x${c.height}`),
    ['0,0 7x7', '3,0 7x7', '4,0 7x7', '0,1 7x7', '3,1 7x7', '4,1 7x7'],
  );
  t.deepEqual(regionCells({ x: 0, y: 0, width: 224, height: 224 }, 224, 224, 7, 7, 32), { x: 0, y: 0, width: 7, height: 7 });
  // The whole-image chunk of a 300x256 image: all of its 10x8 map, the partial last column too (not round(300 / 32) = 9 columns).
  t.deepEqual(regionCells({ x: 0, y: 0, width: 300, height: 256 }, 300, 256, 10, 8, 32), { x: 0, y: 0, width: 10, height: 8 });
});

/** GeM written out in float64, straight from the definition. */
function referenceGem(map: Float32Array, channels: number, h: number, w: number, r: Box, p: number): Float64Array {
  const out = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) sum += Math.max(map[c * h * w + y * w + x], 1e-6) ** p;
    out[c] = (sum / (r.width * r.height)) ** (1 / p);
  }
  return out;
}

test('gemPool equals GeM from its definition (p = 3, 2.5 and 1), rows before outRow untouched, a region outside the map refused', (t) => {
  const [channels, h, w] = [5, 4, 6];
  const map = Float32Array.from({ length: channels * h * w + 3 }, (_, i) => (i % 7 === 0 ? 0 : ((i * 37) % 11) / 3));
  const regions = [
    { x: 0, y: 0, width: 3, height: 3 },
    { x: 3, y: 1, width: 3, height: 3 },
    { x: 0, y: 0, width: 6, height: 4 },
  ];
  for (const p of [3, 2.5, 1]) {
    const out = new Float32Array((regions.length + 1) * channels);
    gemPool(map, 3, channels, h, w, regions, p, out, 1);
    for (const [i, r] of regions.entries()) {
      const want = referenceGem(map.subarray(3), channels, h, w, r, p);
      for (let c = 0; c < channels; c++) t.true(Math.abs(out[(i + 1) * channels + c] - want[c]) <= 1e-5 * Math.max(1, want[c]), `p ${p} region ${i} channel ${c}`);
    }
    t.deepEqual(Array.from(out.subarray(0, channels)), [0, 0, 0, 0, 0], 'rows before outRow untouched');
  }
  t.throws(() => gemPool(map, 0, channels, h, w, [{ x: 4, y: 0, width: 3, height: 3 }], 3, new Float32Array(channels), 0), { message: /not inside the 6x4 map/ });
});

test('the encoder pool pools regions as the reference does on the real feature map of a 256x341 fixture image', async (t) => {
  const image = await decodeImage(flowerImage(81), { shorterSide: 256 });
  const boxes = slidingWindows(image.width, image.height, 224, 112);
  const input = tensorOf(image);
  const features = (await (await session(dynamic.bytes)).run({ [model.input.name]: input }, [dynamic.features]))[dynamic.features];
  const [, channels, h, w] = features.dims;
  const pool = await EncoderPool.open({ model: { ...model, bytes: dynamic.bytes }, features: { name: dynamic.features, stride: dynamic.stride }, replicas: 1, intraOpThreads: 1 });
  try {
    const rows = await pool.encodeRegions((input.data as Float32Array).slice(), 1, image.height, image.width, [boxes]);
    t.is(rows.length, boxes.length * channels);
    for (const [i, box] of boxes.entries()) {
      const want = referenceGem(features.data as Float32Array, channels, h, w, regionCells(box, image.width, image.height, w, h, 32), 3);
      const norm = Math.hypot(...want);
      let worst = 0;
      for (let c = 0; c < channels; c++) worst = Math.max(worst, Math.abs(rows[i * channels + c] - want[c] / norm));
      t.true(worst <= 1e-5, `window ${i}: max |difference| ${worst}`);
    }
  } finally {
    await pool.close();
  }
});

test('the shipped flows: index-crops and index-regions (and query / query-regions) differ only in the encoder pooling, and index.yml is one of the two', async (t) => {
  const pods = async (file: string) => (await loadFlow(path.join(builtinFlowsDir, file))).pods.map((pod) => ({ name: pod.name, needs: pod.needs, replicas: pod.replicas, params: pod.params }));
  const withoutPooling = (list: Awaited<ReturnType<typeof pods>>) => list.map((pod) => ({ ...pod, params: { ...pod.params, pooling: undefined, whole_chunk: undefined } }));
  const encoder = (list: Awaited<ReturnType<typeof pods>>) => list.find((pod) => pod.name === 'encoder')!.params;
  const [crops, regions, index] = await Promise.all([pods('index-crops.yml'), pods('index-regions.yml'), pods('index.yml')]);
  t.deepEqual(withoutPooling(regions), withoutPooling(crops));
  t.like(encoder(crops), { pooling: 'crops', whole_chunk: 'encoded' });
  t.like(encoder(regions), { pooling: 'regions', whole_chunk: 'pooled' });
  t.true([crops, regions].some((flow) => JSON.stringify(flow) === JSON.stringify(index)));
  const [query, queryRegions] = await Promise.all([pods('query.yml'), pods('query-regions.yml')]);
  t.deepEqual(withoutPooling(queryRegions), withoutPooling(query));
  t.like(encoder(queryRegions), { pooling: 'regions', whole_chunk: 'pooled' });
});

test('whole_chunk: pooled without pooling: regions is refused when the flow opens', async (t) => {
  const dir = await tempDir('whole-pooled-crops');
  const flow = path.join(dir, 'flow.yml');
  const source = fs.readFileSync(path.join(builtinFlowsDir, 'index-crops.yml'), 'utf8').replace('      batch_size: 16\n', '      batch_size: 16\n      whole_chunk: pooled\n');
  fs.writeFileSync(flow, source);
  const data = await makeDataDir(subset(1, 1));
  await t.throwsAsync(indexImages({ data, model: modelDir, workspace: path.join(dir, 'ws'), flow }), { message: /pod 'encoder': whole_chunk: pooled needs pooling: regions/ });
});

test('a region index whose whole chunk was encoded (no shipped query flow fits it) is refused with the chunking that differs, not queried with pooled vectors', async (t) => {
  const dir = await tempDir('whole-encoded');
  const flow = path.join(dir, 'flow.yml');
  fs.writeFileSync(flow, fs.readFileSync(path.join(builtinFlowsDir, 'index-regions.yml'), 'utf8').replace(/whole_chunk: pooled.*\n/, 'whole_chunk: encoded\n'));
  const data = await makeDataDir(subset(1, 2));
  const workspace = path.join(dir, 'ws');
  await indexImages({ data, model: modelDir, workspace, flow });
  const searcher = await openIndex(workspace);
  try {
    await t.throwsAsync(searcher.search(flowerImage(subset(1, 2)[0])), { message: /chunking params: the index used \{.*"pooling":"regions".*\}, this run uses \{/ });
  } finally {
    await searcher.close();
  }
});

test('index-regions: the same chunk layout as the crop flow, pooling recorded, the whole chunk pooled from the image pass, and queries follow the index without a flow of their own', async (t) => {
  const images = subset(2, 3);
  const data = await makeDataDir(images);
  const root = await tempDir('regions');
  const regions = path.join(root, 'regions');
  const crops = path.join(root, 'crops');
  await indexImages({ data, model: modelDir, workspace: regions, flow: path.join(builtinFlowsDir, 'index-regions.yml') });
  await indexImages({ data, model: modelDir, workspace: crops, flow: path.join(builtinFlowsDir, 'index-crops.yml') });
  const a = Workspace.openForRead(regions);
  const b = Workspace.openForRead(crops);
  try {
    t.like(a.manifest.chunking, { pooling: 'regions', gem_p: 3, whole_chunk: 'pooled', window: 224, stride: 112, whole: true });
    t.is(b.manifest.chunking.pooling, undefined);
    t.is(b.manifest.chunking.whole_chunk, undefined, 'a crop index keeps the manifest it had');
    t.is(a.chunkCount, b.chunkCount);
    const dim = a.dim;
    const [ma, mb] = [a.matrix(), b.matrix()];
    const whole = new Set(a.wholeChunkRows());
    t.deepEqual(Array.from(a.wholeChunkRows()), Array.from(b.wholeChunkRows()));
    for (let row = 0; row < a.chunkCount; row++) {
      t.deepEqual(a.chunk(row).box, b.chunk(row).box);
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += ma[row * dim + i] * mb[row * dim + i];
      // A pooled window or whole image is near the vector of its crop (or of the squashed image).
      t.true(dot > (whole.has(row) ? 0.8 : 0.6), `row ${row}: cosine to its crop ${dot}`);
    }
    // The whole chunk is GeM over all of the image pass's map.
    const doc = a.docs().find((d) => path.basename(d.path) === path.basename(flowerImage(images[0])))!;
    const image = await decodeImage(flowerImage(images[0]), { shorterSide: 256 });
    const features = (await (await session(dynamic.bytes)).run({ [model.input.name]: tensorOf(image) }, [dynamic.features]))[dynamic.features];
    const [, channels, h, w] = features.dims;
    const want = referenceGem(features.data as Float32Array, channels, h, w, { x: 0, y: 0, width: w, height: h }, 3);
    const norm = Math.hypot(...want);
    const row = a.wholeChunkRows()[doc.id];
    let worst = 0;
    for (let c = 0; c < channels; c++) worst = Math.max(worst, Math.abs(ma[row * dim + c] - want[c] / norm));
    t.true(worst <= 1e-5, `whole chunk vs GeM of the whole map: max |difference| ${worst}`);
  } finally {
    a.close();
    b.close();
  }
  const searcher = await openIndex(regions);
  try {
    const [hit] = (await searcher.search(flowerImage(images[4]), { top: 1 })).results;
    t.is(path.basename(hit.path), path.basename(flowerImage(images[4])));
    t.true(hit.score > 0.999, `self score ${hit.score}`);
  } finally {
    await searcher.close();
  }
});
