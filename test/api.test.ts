/** The module API: indexImages with progress (two encoder workers, small batches), openIndex, search from bytes, searchChunks leave-one-out, rebuild. */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { indexImages, openIndex, type IndexProgress } from '../src/index.js';
import { makeDataDir, modelDir, subset, tempDir } from './e2e-helpers.js';
import { flowerImage } from '../bench/fixtures.js';

test('index, search by bytes, leave-one-out from stored chunks, rebuild', async (t) => {
  const images = subset(2, 3); // 1-3, 81-83
  const data = await makeDataDir(images);
  const workspace = path.join(await tempDir('api'), 'ws');
  const progress: IndexProgress[] = [];
  const summary = await indexImages({ data, workspace, model: modelDir, replicas: 2, batchSize: 4, onProgress: (p) => progress.push(p) });
  t.is(summary.files, 6);
  t.is(summary.indexed, 6);
  t.deepEqual(summary.skipped, []);
  t.is(summary.total.docs, 6);
  t.is(summary.total.chunks, summary.chunks);
  t.true(summary.imagesPerSecond > 0);
  t.is(progress.length, 6);
  t.deepEqual(
    progress.map((p) => p.done),
    [1, 2, 3, 4, 5, 6],
  );
  t.is(progress.at(-1)!.chunks, summary.chunks);

  const searcher = await openIndex(workspace);
  try {
    const bytes = new Uint8Array(await fs.readFile(flowerImage(82)));
    const fromBytes = await searcher.search(bytes, { top: 3, name: 'upload' });
    t.is(fromBytes.query, 'upload');
    t.is(path.basename(fromBytes.results[0].path), 'image_0082.jpg');

    // Leave-one-out straight from the stored vectors: the doc itself never comes back.
    const ws = searcher.workspace;
    const doc = ws.docs().find((d) => d.path.endsWith('image_0082.jpg'))!;
    const kinds = ws.docChunks(doc.id).map((chunk) => chunk.kind);
    const vectors = ws.matrix().slice(doc.firstChunk * ws.dim, (doc.firstChunk + doc.chunkCount) * ws.dim);
    const withSelf = await searcher.searchChunks(vectors, kinds, { top: 6, mode: 'bimatch' });
    t.is(withSelf.results[0].docId, doc.id);
    t.true(withSelf.results[0].score > 0.999999, 'stored vectors match themselves');
    const loo = await searcher.searchChunks(vectors, kinds, { top: 6, mode: 'bimatch', excludeDoc: doc.id });
    t.false(loo.results.some((hit) => hit.docId === doc.id));
    t.deepEqual(
      loo.results.map((hit) => hit.docId),
      withSelf.results
        .filter((hit) => hit.docId !== doc.id)
        .map((hit) => hit.docId)
        .slice(0, loo.results.length),
    );
    const whole = await searcher.searchChunks(vectors, kinds, { top: 6, mode: 'whole', excludeDoc: doc.id });
    t.is(whole.results.length, 5);
    t.false(whole.results.some((hit) => hit.docId === doc.id));
    for (const hit of whole.results) t.deepEqual(hit.box, { x: 0, y: 0, width: ws.doc(hit.docId)!.width, height: ws.doc(hit.docId)!.height });
  } finally {
    await searcher.close();
  }

  const rebuilt = await indexImages({ data, workspace, model: modelDir, rebuild: true });
  t.is(rebuilt.indexed, 6, 'a rebuild indexes everything again');
  t.is(rebuilt.total.docs, 6);
});
