import test from 'ava';
import * as ort from 'onnxruntime-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeImage, resizeExact } from '../src/image/index.js';
import { tsKernels } from '../src/kernels/index.js';
import { loadModel, type LoadedModel } from '../src/model/index.js';
import { defaultEncoderSettings, EncoderPool } from '../src/encoder/index.js';
import { flowerImage, modelDir } from '../bench/fixtures.js';

let model: LoadedModel;
/** Whole-image chunks of 8 fixture images from different classes, normalized NCHW. */
let chunks: Float32Array;
const COUNT = 8;

test.before(async () => {
  model = await loadModel(modelDir);
  const { width, height, norm } = model.input;
  chunks = new Float32Array(COUNT * 3 * width * height);
  for (let i = 0; i < COUNT; i++) {
    const whole = await resizeExact(await decodeImage(flowerImage(1 + i * 170), { shorterSide: 256 }), width, height);
    tsKernels.extractChunks(whole, [{ x: 0, y: 0, width, height }], norm, chunks, i);
  }
});

/** Chunks first..first+count-1 as a fresh batch (encode detaches what it is given). */
function batchOf(first: number, count: number): Float32Array {
  const size = 3 * model.input.width * model.input.height;
  return chunks.slice(first * size, (first + count) * size);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return a.length === b.length ? max : Infinity;
}

/** Reference: the model run in this thread, each row L2-normalized here. */
async function referenceEmbeddings(): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model.bytes, { intraOpNumThreads: 1 });
  try {
    const { width, height } = model.input;
    const out = await session.run({ [model.input.name]: new ort.Tensor('float32', batchOf(0, COUNT), [COUNT, 3, height, width]) }, [model.embedding.name]);
    const rows = Float32Array.from(out[model.embedding.name].data as Float32Array);
    const dim = model.embedding.dim;
    for (let r = 0; r < COUNT; r++) {
      const row = rows.subarray(r * dim, (r + 1) * dim);
      const norm = Math.hypot(...row);
      for (let i = 0; i < dim; i++) row[i] /= norm;
    }
    return rows;
  } finally {
    await session.release();
  }
}

test('embeddings are the model output, L2-normalized, and the batch is transferred, not copied', async (t) => {
  const pool = await EncoderPool.open({ model, replicas: 1, intraOpThreads: 1, batchSize: COUNT });
  try {
    t.is(pool.dim, 1280);
    const batch = batchOf(0, COUNT);
    const out = await pool.encode(batch, COUNT);
    t.is(batch.byteLength, 0, 'the input buffer moved to the worker');
    t.is(out.length, COUNT * 1280);
    for (let r = 0; r < COUNT; r++) t.true(Math.abs(Math.hypot(...out.subarray(r * 1280, (r + 1) * 1280)) - 1) < 1e-5);
    t.true(maxAbsDiff(out, await referenceEmbeddings()) < 1e-5);
    // Different flowers give different embeddings.
    let dot = 0;
    for (let i = 0; i < 1280; i++) dot += out[i] * out[1280 + i];
    t.true(dot < 0.99, `cosine of two different photos: ${dot}`);
  } finally {
    await pool.close();
  }
});

test('a batch gives the same embeddings as its chunks one at a time', async (t) => {
  const pool = await EncoderPool.open({ model, replicas: 1, intraOpThreads: 2, batchSize: 4 });
  try {
    const batched = await pool.encode(batchOf(0, 4), 4);
    const single = await Promise.all([0, 1, 2, 3].map((i) => pool.encode(batchOf(i, 1), 1)));
    for (let i = 0; i < 4; i++) t.true(maxAbsDiff(batched.subarray(i * 1280, (i + 1) * 1280), single[i]) < 1e-5, `chunk ${i}`);
  } finally {
    await pool.close();
  }
});

test('two workers encoding concurrently agree with a single worker', async (t) => {
  const single = await EncoderPool.open({ model, replicas: 1, intraOpThreads: 1, batchSize: 2 });
  const expected = await Promise.all([0, 2, 4, 6].map((i) => single.encode(batchOf(i, 2), 2)));
  await single.close();

  const pool = await EncoderPool.open({ model, replicas: 2, intraOpThreads: 1, batchSize: 2 });
  try {
    // 5 rounds of 4 batches in flight at once keep both sessions running side by side.
    for (let round = 0; round < 5; round++) {
      const got = await Promise.all([0, 2, 4, 6].map((i) => pool.encode(batchOf(i, 2), 2)));
      for (let b = 0; b < 4; b++) t.true(maxAbsDiff(got[b], expected[b]) < 1e-6, `round ${round}, batch ${b}`);
    }
  } finally {
    await pool.close();
  }
});

/** CPU time this process spends in idle windows right after runs (all threads, workers included). */
async function cpuWhileIdleAfterRuns(pool: EncoderPool): Promise<number> {
  let idleMs = 0;
  for (let i = 0; i < 5; i++) {
    await pool.encode(batchOf(0, 2), 2);
    const before = process.cpuUsage();
    await sleep(60);
    const used = process.cpuUsage(before);
    idleMs += (used.user + used.system) / 1000;
  }
  return idleMs;
}

// Serial (AVA runs serial tests before the concurrent ones): process CPU time counts every pool in the process.
test.serial('onnxruntime threads do not spin while the pool waits for work (the extra options took effect)', async (t) => {
  const quiet = await EncoderPool.open({ model, replicas: 1, intraOpThreads: 2 });
  const quietMs = await cpuWhileIdleAfterRuns(quiet);
  await quiet.close();
  // Control: the same pool with spinning allowed burns CPU in the same windows, so the measurement can tell.
  const spinning = await EncoderPool.open({ model, replicas: 1, intraOpThreads: 2, allowSpinning: true });
  const spinningMs = await cpuWhileIdleAfterRuns(spinning);
  await spinning.close();
  t.log(`CPU in 5 × 60 ms idle windows: ${quietMs.toFixed(1)} ms without spinning, ${spinningMs.toFixed(1)} ms with`);
  // Measured here: about 1 ms without spinning, about 100 ms with (an intra-op thread spins ~20 ms after each run).
  t.true(quietMs < 30, `idle CPU without spinning: ${quietMs} ms`);
  t.true(spinningMs > 2 * quietMs + 20, `spinning control: ${spinningMs} ms vs ${quietMs} ms`);
});

test('bad arguments and a closed pool are refused', async (t) => {
  const pool = await EncoderPool.open({ model, replicas: 1, intraOpThreads: 1 });
  await t.throwsAsync(pool.encode(new Float32Array(10), 1), { instanceOf: RangeError, message: /batch has 10 floats, expected 1 × 150528/ });
  await t.throwsAsync(pool.encode(new Float32Array(0), 0), { instanceOf: RangeError, message: /count must be a positive integer/ });
  await pool.close();
  await t.throwsAsync(pool.encode(batchOf(0, 1), 1), { message: /closed/ });
  await t.throwsAsync(EncoderPool.open({ model, replicas: 0 }), { instanceOf: RangeError, message: /replicas must be a positive integer/ });
});

test('close() while batches are running lets them finish (terminating a worker inside onnxruntime aborts the process)', async (t) => {
  const pool = await EncoderPool.open({ model, replicas: 2, intraOpThreads: 1 });
  const running = [0, 2, 4, 6].map((i) => pool.encode(batchOf(i, 2), 2));
  await pool.close();
  for (const out of await Promise.all(running)) t.is(out.length, 2 * 1280);
});

test('a model the workers cannot load fails open() with the reason, without crashing the process', async (t) => {
  const broken = { ...model, bytes: model.bytes.subarray(0, 1000) };
  await t.throwsAsync(EncoderPool.open({ model: broken, replicas: 2, intraOpThreads: 1 }), { message: /model\.onnx: the encoder could not run the model: .*protobuf parsing failed/ });
  const wrongDim = { ...model, embedding: { ...model.embedding, dim: 1000 } };
  await t.throwsAsync(EncoderPool.open({ model: wrongDim, replicas: 1, intraOpThreads: 1 }), { message: /expected float32 \[1, 1000\]/ });
});

test('default thread settings never oversubscribe the cores', (t) => {
  for (let cores = 1; cores <= 16; cores++) {
    const d = defaultEncoderSettings({}, cores);
    t.true(d.replicas * d.intraOpThreads <= cores, `${cores} cores`);
    for (let replicas = 1; replicas <= cores; replicas++) {
      const s = defaultEncoderSettings({ replicas }, cores);
      t.true(s.replicas * s.intraOpThreads <= cores && s.intraOpThreads >= 1, `${cores} cores, ${replicas} replicas`);
    }
  }
  t.deepEqual(defaultEncoderSettings({}, 2), { replicas: 2, intraOpThreads: 1, batchSize: 16 });
  t.deepEqual(defaultEncoderSettings({ replicas: 1 }, 2), { replicas: 1, intraOpThreads: 2, batchSize: 16 });
  t.deepEqual(defaultEncoderSettings({}, 16), { replicas: 4, intraOpThreads: 4, batchSize: 16 });
});
