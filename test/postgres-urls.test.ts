/**
 * `index --data urls.txt --store postgres://…`: a text file of http(s) URLs as the data source. The
 * images come from a local HTTP server (nothing here touches the network); the docs' paths are the
 * URLs, a URL that answers 404 is skipped with its reason, and a line that is not a URL is one
 * clear error naming the file and the line.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { indexImagesIntoPostgres } from '../src/flows/fleet.js';
import { flowerImage } from '../bench/fixtures.js';
import { modelDir, runCli, subset, tempDir } from './e2e-helpers.js';
import { createTestDatabase, postgresTest } from './helpers/postgres.js';
import { pgQuery } from './helpers/pg-fleet.js';

const test = postgresTest('postgres-urls');

/** Serves the fixture images as /img/<file name>; anything else is a 404. */
async function imageServer(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const server = http.createServer((req, res) => {
    const match = /^\/img\/(image_\d{4}\.jpg)$/.exec(req.url ?? '');
    if (!match) {
      res.writeHead(404).end('not found');
      return;
    }
    fs.readFile(path.join(path.dirname(flowerImage(1)), match[1])).then(
      (bytes) => res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': bytes.length }).end(bytes),
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('a URL list is indexed over HTTP: the docs are the URLs, a 404 is skipped with its reason, and each image finds its URL', async (t) => {
  t.timeout(180_000);
  const { url } = await createTestDatabase(t);
  const base = await imageServer(t);
  const images = subset(1, 3).map(flowerImage);
  const urls = images.map((file) => `${base}/img/${path.basename(file)}`);
  const list = path.join(await tempDir('urls'), 'urls.txt');
  await fs.writeFile(list, `# three images and one that is gone\n${urls.join('\n')}\n\n${base}/img/image_9999.jpg\n${urls[0]}\n`);
  const summary = await indexImagesIntoPostgres({ data: list, store: url, model: modelDir, replicas: 1, pollMs: 100 });
  t.is(summary.files, 4, 'the URLs, each once');
  t.is(summary.indexed, 3);
  t.deepEqual(summary.skipped, [{ file: `${base}/img/image_9999.jpg`, reason: 'cannot download (HTTP 404 Not Found)' }]);
  const docs = await pgQuery<{ path: string; chunk_count: number }>(url, 'SELECT path, chunk_count FROM flower.docs ORDER BY path');
  t.deepEqual(
    docs.map((d) => d.path),
    [...urls].sort(),
  );
  t.true(docs.every((d) => d.chunk_count > 1));
  const found = await runCli(['query', ...images, '--store', url, '--model', modelDir, '--top', '1', '--json']);
  t.is(found.code, 0, found.stderr);
  const { queries } = JSON.parse(found.stdout) as { queries: { results: { path: string }[] }[] };
  t.deepEqual(
    queries.map((q) => q.results[0].path),
    urls,
  );
  // A re-run downloads to hash, finds every content stored, and keeps the docs of URLs it no longer lists.
  await fs.writeFile(list, `${urls[1]}\n`);
  const again = await indexImagesIntoPostgres({ data: list, store: url, model: modelDir, replicas: 1, pollMs: 100 });
  t.like(again, { indexed: 0, unchanged: 1, removed: [], total: { docs: 3 } });
});

test('a line of the URL list that is not an http(s) URL is one clear error naming the file and the line', async (t) => {
  const { url } = await createTestDatabase(t);
  const list = path.join(await tempDir('urls'), 'urls.txt');
  await fs.writeFile(list, 'http://127.0.0.1:1/img/a.jpg\n\nftp://example.org/b.jpg\n');
  const out = await runCli(['index', '--data', list, '--store', url, '--model', modelDir]);
  t.not(out.code, 0);
  t.regex(out.stderr, new RegExp(`${list.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: line 3: only http:// and https:// URLs are read, got ftp://`));
  t.is(out.stderr.trim().split('\n').length, 1, out.stderr);
});
