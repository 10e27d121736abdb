/** The README's custom executor: examples/flip-crafter.js in examples/flip-index.yml, run for real. */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { indexImages, openIndex, Workspace } from '../src/index.js';
import { decodeImage } from '../src/image/index.js';
import { thumbnail, THUMBNAIL_LENGTH } from '../src/search/index.js';
import { readRankingState } from '../src/store/ranking-state.js';
import { makeDataDir, modelDir, tempDir } from './e2e-helpers.js';
import { flowerImage, projectRoot } from '../bench/fixtures.js';

const flipFlow = path.join(projectRoot, 'examples', 'flip-index.yml');

test('a flow with the flip crafter indexes mirrored images: a mirrored query matches them exactly', async (t) => {
  const data = await makeDataDir([1, 81, 161, 241]);
  const root = await tempDir('flip');
  const flippedWs = path.join(root, 'flipped');
  const plainWs = path.join(root, 'plain');
  const flipped = await indexImages({ data, workspace: flippedWs, model: modelDir, flow: flipFlow });
  const plain = await indexImages({ data, workspace: plainWs, model: modelDir });
  t.is(flipped.indexed, 4);
  t.is(plain.indexed, 4);
  t.true('flip' in flipped.podTime, 'the custom pod ran');

  // Same chunk layout (a mirror keeps the size), different vectors.
  const a = Workspace.openForRead(flippedWs);
  const b = Workspace.openForRead(plainWs);
  try {
    t.is(a.chunkCount, b.chunkCount);
    t.notDeepEqual(Array.from(a.matrix().subarray(0, a.dim)), Array.from(b.matrix().subarray(0, b.dim)));
  } finally {
    a.close();
    b.close();
  }

  const mirrored = path.join(root, 'mirrored-0081.png');
  await sharp(flowerImage(81)).flop().png().toFile(mirrored);
  const score = async (workspace: string) => {
    const searcher = await openIndex(workspace);
    try {
      const { results } = await searcher.search(mirrored, { top: 4 });
      t.is(path.basename(results[0].path), 'image_0081.jpg');
      return results[0].score;
    } finally {
      await searcher.close();
    }
  };
  const inFlipped = await score(flippedWs);
  const inPlain = await score(plainWs);
  t.true(inFlipped > 0.99999, `mirrored query vs mirrored index: ${inFlipped}`);
  t.true(inPlain < inFlipped, `the plain index matches the mirrored query less well (${inPlain} < ${inFlipped})`);
});

test("the ranking state's thumbnails are taken from the flow's images (the crafted ones), not read again from the files", async (t) => {
  const data = await makeDataDir([81, 161]);
  const root = await tempDir('flip-thumbnails');
  const workspace = path.join(root, 'ws');
  await indexImages({ data, workspace, model: modelDir, flow: flipFlow });
  const stored = readRankingState(workspace);
  if (!('state' in stored)) return t.fail(stored.unusable);
  const ws = Workspace.openForRead(workspace);
  const id = ws.docs().findIndex((doc) => path.basename(doc.path) === 'image_0081.jpg');
  ws.close();
  const row = stored.state.thumbnails.subarray(id * THUMBNAIL_LENGTH, (id + 1) * THUMBNAIL_LENGTH);
  const mirrored = path.join(root, 'mirrored-0081.png');
  await sharp(flowerImage(81)).flop().png().toFile(mirrored);
  const dot = async (file: string) => thumbnail(await decodeImage(file, { shorterSide: 256 })).reduce((sum, v, i) => sum + v * row[i], 0);
  const asMirrored = await dot(mirrored);
  const asFile = await dot(flowerImage(81));
  t.true(asMirrored > 0.999, `the stored thumbnail is the mirrored picture's (correlation ${asMirrored})`);
  t.true(asFile < asMirrored - 0.01, `and not the file's (correlation ${asFile})`);
});

test('the example flow rejects a typo in the custom executor parameters', async (t) => {
  const dir = await tempDir('flip-typo');
  const flow = path.join(dir, 'flow.yml');
  await fs.copyFile(path.join(projectRoot, 'examples', 'flip-crafter.js'), path.join(dir, 'flip-crafter.js'));
  await fs.writeFile(flow, (await fs.readFile(flipFlow, 'utf8')).replace('enabled: true', 'enabeld: true'));
  await t.throwsAsync(indexImages({ data: dir, workspace: path.join(dir, 'ws'), model: modelDir, flow }), {
    message: /flow\.yml:14: unknown key 'enabeld' in pod 'flip' with: \(did you mean 'enabled'\?\)/,
  });
});
