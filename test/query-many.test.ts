/**
 * More query images than any user would pass: the query command with hundreds of paths on its
 * command line, and thousands of searches through one Searcher. onnxruntime's telemetry used to
 * parse the whole command line on an encoder worker's stack and overflow it (SIGSEGV) past ~300 paths.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { openIndex } from '../src/flows/search.js';
import { makeDataDir, modelDir, runCli, subset, tempDir } from './e2e-helpers.js';

const QUERY_FILES = 600;
const API_SEARCHES = 1000;

async function smallIndex(): Promise<string> {
  const workspace = path.join(await tempDir('many'), 'ws');
  const indexed = await runCli(['index', '--data', await makeDataDir(subset(2, 2)), '--model', modelDir, '--workspace', workspace, '--quiet']);
  if (indexed.code !== 0) throw new Error(`index failed: ${indexed.stderr}`);
  return workspace;
}

/** A tiny image (one window + the whole-image chunk) so hundreds of queries stay quick. */
function tinyPng(shade: number): Promise<Buffer> {
  return sharp({ create: { width: 32, height: 32, channels: 3, background: { r: shade, g: 200 - shade, b: 90 } } })
    .png()
    .toBuffer();
}

test(`query with ${QUERY_FILES} image paths on its command line answers every one`, async (t) => {
  const workspace = await smallIndex();
  // Long folder and file names make the command line ~80 KB, far past where it used to crash.
  const dir = path.join(path.dirname(workspace), 'queries-with-a-rather-long-folder-name-as-photo-libraries-often-have');
  await fs.mkdir(dir);
  const png = await tinyPng(40);
  const files = Array.from({ length: QUERY_FILES }, (_, i) => path.join(dir, `holiday-photo-${String(i).padStart(4, '0')}-edited-copy.png`));
  await Promise.all(files.map((file) => fs.writeFile(file, png)));

  const { ORT_DISABLE_TELEMETRY: _ignored, ...env } = process.env;
  const result = await runCli(['query', ...files, '--workspace', workspace, '--top', '1', '--json'], env);
  t.is(result.code, 0, result.stderr.slice(-2000));
  const output = JSON.parse(result.stdout) as { queries: { query: string; results: unknown[] }[] };
  t.is(output.queries.length, QUERY_FILES);
  t.deepEqual(
    output.queries.map((q) => q.query),
    files,
  );
  t.true(output.queries.every((q) => q.results.length === 1));
});

test(`${API_SEARCHES} searches through one Searcher all answer, the same image the same way`, async (t) => {
  const searcher = await openIndex(await smallIndex(), { model: modelDir });
  try {
    const images = await Promise.all([tinyPng(40), tinyPng(160)]);
    const first = await Promise.all(images.map((image) => searcher.search(image, { top: 2 })));
    let rssPeak = 0;
    const rssStart = process.memoryUsage().rss;
    for (let i = 0; i < API_SEARCHES; i++) {
      const result = await searcher.search(images[i % 2], { top: 2 });
      t.deepEqual(
        result.results.map((hit) => [hit.docId, hit.score]),
        first[i % 2].results.map((hit) => [hit.docId, hit.score]),
      );
      if (i % 100 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
    t.true(rssPeak - rssStart < 200 * 1024 * 1024, `RSS grew by ${((rssPeak - rssStart) / 1048576).toFixed(0)} MiB over ${API_SEARCHES} searches`);
  } finally {
    await searcher.close();
  }
});
