/** GET /docs/:id/similar equals the searcher's searchDoc; GET /duplicates lists the planted copy. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { createServer } from '../src/server/index.js';
import { indexImages, openIndex, type Searcher } from '../src/index.js';
import { flowerImage, modelDir } from '../bench/fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-similar-'));
let searcher: Searcher;

test.before(async () => {
  const data = path.join(tmp, 'data');
  fs.mkdirSync(data);
  for (const n of [1, 2, 81, 82, 161, 162]) fs.copyFileSync(flowerImage(n), path.join(data, `image_${n}.jpg`));
  await sharp(flowerImage(2)).jpeg({ quality: 75 }).toFile(path.join(data, 'copy.jpg'));
  await indexImages({ data, workspace: path.join(tmp, 'ws'), model: modelDir });
  searcher = await openIndex(path.join(tmp, 'ws'), { model: modelDir });
});
test.after.always(async () => {
  await searcher?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('GET /docs/:id/similar ranks from the stored vectors; GET /duplicates groups the copy', async (t) => {
  const app = await createServer({ searcher });
  try {
    const similar = await app.inject({ method: 'GET', url: '/docs/1/similar?top=3' });
    t.is(similar.statusCode, 200, similar.body);
    const body = similar.json<{ results: { docId: number; score: number; thumb: string }[] }>();
    const direct = await searcher.searchDoc(1, { top: 3 });
    t.deepEqual(
      body.results.map((r) => [r.docId, r.score]),
      direct.results.map((r) => [r.docId, r.score]),
    );
    t.is(body.results[0].thumb, `/docs/${body.results[0].docId}/thumb`);
    t.is((await app.inject({ method: 'GET', url: '/docs/999/similar' })).statusCode, 404);
    const dups = await app.inject({ method: 'GET', url: '/duplicates' });
    t.is(dups.statusCode, 200, dups.body);
    const groups = dups.json<{ groups: { path: string }[][] }>().groups;
    t.deepEqual(
      groups.map((g) => g.map((d) => path.basename(d.path)).sort()),
      [['copy.jpg', 'image_2.jpg']],
    );
  } finally {
    await app.close();
  }
});
