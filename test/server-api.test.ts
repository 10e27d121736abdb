/**
 * The HTTP API over a real socket against a real small index (3 classes × 4 fixture images):
 * good uploads, every kind of bad input, path traversal attempts, the queue bound and /metrics.
 * Serial: the queue and metrics assertions need the server to themselves.
 */
import test from 'ava';
import fs from 'node:fs';
import http from 'node:http';
import sharp from 'sharp';
import { serve, type RunningServer } from '../src/server/serve.js';
import { flowerImage } from '../bench/fixtures.js';
import { buildSmallIndex, classOf, INDEXED_IMAGES, type SmallIndex } from '../bench/small-index.js';

const MAX_UPLOAD = 2 * 1024 * 1024;
const MAX_PIXELS = 4_000_000;
const MAX_CONCURRENT = 1;
const MAX_WAITING = 2;

let index: SmallIndex;
let server: RunningServer;

test.before(async () => {
  index = await buildSmallIndex('flower-server-api');
  server = await serve({
    workspace: index.workspace,
    port: 0,
    log: false,
    maxUploadBytes: MAX_UPLOAD,
    maxPixels: MAX_PIXELS,
    maxConcurrent: MAX_CONCURRENT,
    maxWaiting: MAX_WAITING,
  });
});

test.after.always(async () => {
  await server?.close();
  index?.cleanup();
});

interface Hit {
  rank: number;
  docId: number;
  score: number;
  path: string;
  label: string | null;
  box: { x: number; y: number; width: number; height: number };
  area: { left: number; top: number; width: number; height: number };
  doc: string;
  image: string;
  thumb: string;
}
interface SearchBody {
  query: { bytes: number; format: string; width: number; height: number };
  results: Hit[];
  timings: Record<string, number>;
}
interface ErrorBody {
  error: { code: string; message: string };
}

function url(pathAndQuery: string): string {
  return new URL(pathAndQuery, server.url).href;
}

function postImage(bytes: Uint8Array | string, contentType: string | undefined, query = ''): Promise<Response> {
  // A copy typed as ArrayBuffer-backed, which is what fetch's BodyInit accepts.
  const body = typeof bytes === 'string' ? bytes : new Uint8Array(bytes);
  return fetch(url(`/search${query}`), { method: 'POST', headers: contentType ? { 'content-type': contentType } : {}, body });
}

function postMultipart(bytes: Uint8Array, type: string, query = ''): Promise<Response> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(bytes)], { type }), 'query.jpg');
  return fetch(url(`/search${query}`), { method: 'POST', body: form });
}

async function expectError(t: import('ava').ExecutionContext, response: Response, status: number, code: string): Promise<ErrorBody> {
  t.is(response.status, status, `expected ${status} ${code}`);
  t.regex(response.headers.get('content-type') ?? '', /application\/json/);
  const body = (await response.json()) as ErrorBody;
  t.is(body.error.code, code);
  t.true(body.error.message.length > 10, 'the message says what is wrong');
  return body;
}

/** GET with the path sent byte for byte (fetch would normalize `..` segments away). */
function rawGet(rawPath: string): Promise<{ status: number; body: string; contentType: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: hostname, port, path: rawPath, method: 'GET' }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1'), contentType: String(response.headers['content-type'] ?? '') }));
    });
    request.on('error', reject);
    request.end();
  });
}

const daisyQuery = fs.readFileSync(flowerImage(805));

test.serial('a daisy photo finds the indexed daisies first, with links, areas and per-stage timings', async (t) => {
  const response = await postImage(daisyQuery, 'image/jpeg', '?top=5');
  t.is(response.status, 200);
  const body = (await response.json()) as SearchBody;
  t.deepEqual(body.query, { bytes: daisyQuery.byteLength, format: 'jpeg', width: body.query.width, height: body.query.height });
  t.is(body.results.length, 5);
  t.deepEqual(
    body.results.map((hit) => hit.rank),
    [1, 2, 3, 4, 5],
  );
  t.is(body.results[0].label, 'daisy');
  for (let i = 1; i < body.results.length; i++) t.true(body.results[i - 1].score >= body.results[i].score, 'best first');
  for (const hit of body.results) {
    const doc = server.searcher.workspace.doc(hit.docId)!;
    t.is(hit.path, doc.path);
    t.is(hit.label, doc.label);
    t.is(hit.thumb, `/docs/${hit.docId}/thumb`);
    t.is(hit.image, `/docs/${hit.docId}/image`);
    t.true(hit.area.left >= 0 && hit.area.top >= 0 && hit.area.left + hit.area.width <= 1 && hit.area.top + hit.area.height <= 1, JSON.stringify(hit.area));
  }
  for (const stage of ['queue', 'decode', 'encode', 'topk', 'rank', 'lookup', 'total']) t.true(body.timings[stage] >= 0, `timing ${stage}`);
});

test.serial('multipart uploads and raw bodies give the same results; top, mode and minScore are honoured', async (t) => {
  const raw = (await (await postImage(daisyQuery, 'image/jpeg', '?top=3')).json()) as SearchBody;
  const multipart = await postMultipart(daisyQuery, 'image/jpeg', '?top=3');
  t.is(multipart.status, 200);
  t.deepEqual(
    ((await multipart.json()) as SearchBody).results.map((h) => h.docId),
    raw.results.map((h) => h.docId),
  );
  const octet = (await (await postImage(daisyQuery, 'application/octet-stream', '?top=12&mode=whole')).json()) as SearchBody;
  t.is(octet.results.length, INDEXED_IMAGES.length);
  const best = octet.results[0].score;
  const filtered = (await (await postImage(daisyQuery, 'image/jpeg', `?top=12&mode=whole&minScore=${best}`)).json()) as SearchBody;
  t.true(filtered.results.length >= 1 && filtered.results.every((h) => h.score >= best));
  // Every ranking mode the library has is a query mode of the API.
  const chamfer = (await (await postImage(daisyQuery, 'image/jpeg', '?top=3&mode=chamfer')).json()) as SearchBody;
  t.is(chamfer.results.length, 3);
  t.is(chamfer.results[0].label, 'daisy');
});

test.serial('invalid query parameters are 400 with the failing field named', async (t) => {
  for (const query of ['?top=0', '?top=abc', '?top=101', '?mode=fuzzy', '?minScore=2']) {
    const body = await expectError(t, await postImage(daisyQuery, 'image/jpeg', query), 400, 'invalid_request');
    t.regex(body.error.message, /querystring\/(top|mode|minScore)/, query);
  }
});

test.serial('unknown query parameters are 400 naming the key, not silently ignored', async (t) => {
  const body = await expectError(t, await postImage(daisyQuery, 'image/jpeg', '?topp=5'), 400, 'invalid_request');
  t.regex(body.error.message, /"topp"/);
  t.regex(body.error.message, /top, minScore, mode/, 'and the keys that are known');
});

test.serial('a declared media type is parsed: parameters and case do not make an image a 415', async (t) => {
  for (const type of ['image/jpeg; charset=x', 'IMAGE/JPEG', 'image/jpeg ; q=1', 'application/octet-stream; x=1']) {
    t.is((await postImage(daisyQuery, type, '?top=1')).status, 200, type);
  }
  await expectError(t, await postImage(daisyQuery, 'text/plain; charset=utf-8'), 415, 'unsupported_media_type');
});

test.serial('a multipart request with a second file is 400, not the first file searched', async (t) => {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(daisyQuery)], { type: 'image/jpeg' }), 'a.jpg');
  form.append('other', new Blob([new Uint8Array(daisyQuery)], { type: 'image/jpeg' }), 'b.jpg');
  const body = await expectError(t, await fetch(url('/search'), { method: 'POST', body: form }), 400, 'too_many_files');
  t.regex(body.error.message, /one image file/);
  // Text fields beside the one file are allowed and ignored.
  const withField = new FormData();
  withField.append('note', 'hello');
  withField.append('image', new Blob([new Uint8Array(daisyQuery)], { type: 'image/jpeg' }), 'a.jpg');
  t.is((await fetch(url('/search?top=1'), { method: 'POST', body: withField })).status, 200);
});

test.serial('malformed multipart is 400 malformed_multipart, not 500', async (t) => {
  const head = '--XyZ\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\nContent-Type: image/jpeg\r\n\r\n';
  const post = (contentType: string, body: Uint8Array) => fetch(url('/search'), { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(body) });
  const whole = Buffer.concat([Buffer.from(head), daisyQuery, Buffer.from('\r\n--XyZ--\r\n')]);
  t.is((await post('multipart/form-data; boundary=XyZ', whole)).status, 200, 'the well-formed request is fine');
  const noBoundary = await expectError(t, await post('multipart/form-data', whole), 400, 'malformed_multipart');
  t.regex(noBoundary.error.message, /boundary/i);
  await expectError(t, await post('multipart/form-data; boundary=XyZ', whole.subarray(0, whole.byteLength - 200)), 400, 'malformed_multipart');
});

test.serial('an empty body is 400', async (t) => {
  await expectError(t, await postImage(new Uint8Array(0), 'image/jpeg'), 400, 'empty_body');
  await expectError(t, await fetch(url('/search'), { method: 'POST' }), 400, 'empty_body');
  await expectError(t, await postMultipart(new Uint8Array(0), 'image/jpeg'), 400, 'empty_body');
});

test.serial('unsupported content types and formats are 415', async (t) => {
  await expectError(t, await postImage('hello', 'text/plain'), 415, 'unsupported_media_type');
  await expectError(t, await postImage('{"image":"x"}', 'application/json'), 415, 'unsupported_media_type');
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"><rect width="300" height="300" fill="red"/></svg>';
  const body = await expectError(t, await postImage(svg, 'image/svg+xml'), 415, 'unsupported_media_type');
  t.regex(body.error.message, /svg/);
  await expectError(t, await postImage(svg, 'image/png'), 415, 'unsupported_media_type'); // the declared type is not trusted
  await expectError(t, await postMultipart(new TextEncoder().encode('just text'), 'text/plain'), 415, 'unsupported_media_type');
});

test.serial("undecodable images are 422 with the image module's reason", async (t) => {
  const garbage = await expectError(t, await postImage(new Uint8Array(4096).fill(7), 'image/jpeg'), 422, 'undecodable_image');
  t.regex(garbage.error.message, /not an image/);
  const truncated = await expectError(t, await postImage(daisyQuery.subarray(0, 3000), 'image/jpeg'), 422, 'undecodable_image');
  t.regex(truncated.error.message, /truncated or corrupt JPEG/);
  const tiny = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } })
    .png()
    .toBuffer();
  const small = await expectError(t, await postImage(tiny, 'image/png'), 422, 'undecodable_image');
  t.regex(small.error.message, /too small/);
});

test.serial('uploads over the byte limit are 413 (raw and multipart); images over the pixel limit are 422', async (t) => {
  const big = new Uint8Array(MAX_UPLOAD + 1);
  big.set(daisyQuery);
  await expectError(t, await postImage(big, 'image/jpeg'), 413, 'upload_too_large');
  await expectError(t, await postMultipart(big, 'image/jpeg'), 413, 'upload_too_large');
  // 2100 × 2000 = 4.2 MP in a few KB: within the byte limit, refused from its header alone.
  const huge = await sharp({ create: { width: 2100, height: 2000, channels: 3, background: '#3a5' } })
    .png()
    .toBuffer();
  t.true(huge.byteLength < MAX_UPLOAD);
  const body = await expectError(t, await postImage(huge, 'image/png'), 422, 'too_many_pixels');
  t.regex(body.error.message, /2100x2000/);
});

test.serial('doc metadata, original image and thumbnail are served by numeric id', async (t) => {
  const doc = server.searcher.workspace.doc(3)!;
  const meta = (await (await fetch(url('/docs/3'))).json()) as Record<string, unknown>;
  t.like(meta, { id: 3, path: doc.path, label: doc.label, width: doc.width, height: doc.height, sha256: doc.sha256, chunkCount: doc.chunkCount, thumb: '/docs/3/thumb' });
  const image = await fetch(url('/docs/3/image'));
  t.is(image.status, 200);
  t.is(image.headers.get('content-type'), 'image/jpeg');
  t.deepEqual(Buffer.from(await image.arrayBuffer()), fs.readFileSync(doc.path));
  const cached = await fetch(url('/docs/3/image'), { headers: { 'if-none-match': image.headers.get('etag')! } });
  t.is(cached.status, 304);
  const thumb = await fetch(url('/docs/3/thumb'));
  t.is(thumb.status, 200);
  const info = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
  t.is(info.format, 'jpeg');
  t.true(Math.max(info.width, info.height) <= 256);
  await expectError(t, await fetch(url(`/docs/${INDEXED_IMAGES.length}`)), 404, 'doc_not_found');
  await expectError(t, await fetch(url('/docs/-1/image')), 400, 'invalid_request');
  await expectError(t, await fetch(url('/docs/abc/thumb')), 400, 'invalid_request');
});

test.serial('path traversal attempts get 4xx and never file content', async (t) => {
  const attempts = [
    '/docs/../../etc/passwd',
    '/docs/../../../../../../etc/passwd/image',
    '/docs/0/../../../../etc/passwd',
    '/docs/..%2f..%2fetc%2fpasswd',
    '/docs/..%2f..%2fetc%2fpasswd/image',
    '/docs/%2e%2e%2f%2e%2e%2fetc%2fpasswd/image',
    '/docs/%2e%2e/%2e%2e/etc/passwd/thumb',
    '/docs/%252e%252e%252fetc%252fpasswd/image',
    '/docs/0%2f..%2f..%2fetc%2fpasswd/image',
    '/docs/%2fetc%2fpasswd/image',
    '/docs/0%00/image',
    '/../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/docs/..\\..\\etc\\passwd/image',
  ];
  for (const attempt of attempts) {
    const response = await rawGet(attempt);
    t.true(response.status >= 400 && response.status < 500, `${attempt} → ${response.status}`);
    t.regex(response.contentType, /application\/json/, attempt);
    t.notRegex(response.body, /root:|daemon:|\/bin\/(ba)?sh/, `${attempt} leaked file content`);
  }
});

test.serial('concurrent searches beyond the queue bound get 429 + Retry-After; all others are answered correctly', async (t) => {
  const queries = [805, 5, 725, 806, 6, 726, 807, 7, 727, 808, 8, 728];
  const expectedTop = new Map<number, number>();
  for (const n of queries.slice(0, 3)) {
    const body = (await (await postImage(fs.readFileSync(flowerImage(n)), 'image/jpeg', '?top=3')).json()) as SearchBody;
    expectedTop.set(n, body.results[0].docId);
  }
  const responses = await Promise.all(
    queries.map(async (n) => {
      const response = await postImage(fs.readFileSync(flowerImage(n)), 'image/jpeg', '?top=3');
      return { n, response, body: (await response.json()) as SearchBody | ErrorBody };
    }),
  );
  const refused = responses.filter((r) => r.response.status === 429);
  const answered = responses.filter((r) => r.response.status === 200);
  t.is(refused.length + answered.length, queries.length, `only 200 and 429: ${responses.map((r) => r.response.status).join(',')}`);
  t.true(refused.length > 0, 'the queue bound refused some');
  t.true(answered.length >= MAX_CONCURRENT + MAX_WAITING, 'as many as the queue holds were served');
  for (const { response, body } of refused) {
    t.regex(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    t.is((body as ErrorBody).error.code, 'queue_full');
  }
  for (const { n, body } of answered) {
    const results = (body as SearchBody).results;
    t.is(results.length, 3);
    const expected = expectedTop.get(n);
    if (expected !== undefined) t.is(results[0].docId, expected, `image ${n} gets the same answer under load`);
  }
  const health = (await (await fetch(url('/healthz'))).json()) as { status: string; queue: { inFlight: number; waiting: number } };
  t.is(health.status, 'ok');
  t.deepEqual([health.queue.inFlight, health.queue.waiting], [0, 0], 'every ticket went back');
  // Still serving normally afterwards.
  t.is((await postImage(daisyQuery, 'image/jpeg')).status, 200);
});

test.serial('the search page and its script are served with a strict CSP and no external references', async (t) => {
  const page = await fetch(url('/'));
  t.is(page.status, 200);
  t.regex(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const html = await page.text();
  t.regex(html, /<script type="module" src="\/app.js">/);
  t.notRegex(html, /https?:\/\//, 'no external URLs');
  const script = await fetch(url('/app.js'));
  t.is(script.status, 200);
  t.regex(script.headers.get('content-type') ?? '', /javascript/);
  t.notRegex(await script.text(), /https?:\/\//);
});

test.serial('/metrics reports requests by route and status, latency histogram, queue depth and index size', async (t) => {
  const response = await fetch(url('/metrics'));
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? NaN);
  t.true(value(/^flower_http_requests_total\{method="POST",route="\/search",status="200"\} (\d+)$/m) >= 5);
  t.true(value(/^flower_http_requests_total\{method="POST",route="\/search",status="429"\} (\d+)$/m) >= 1);
  t.true(value(/^flower_http_requests_total\{method="POST",route="\/search",status="415"\} (\d+)$/m) >= 4);
  t.true(value(/^flower_http_requests_total\{method="GET",route="\/docs\/:id\/image",status="200"\} (\d+)$/m) >= 1);
  t.regex(text, /^flower_http_requests_total\{method="GET",route="unmatched",status="404"\} \d+$/m, 'unmatched URLs share one label');
  t.notRegex(text, /etc\/passwd/, 'raw URLs never become label values');
  t.is(value(/^flower_http_request_duration_seconds_count\{route="\/search"\} (\d+)$/m), value(/^flower_http_request_duration_seconds_bucket\{le="\+Inf",route="\/search"\} (\d+)$/m));
  t.is(value(/^flower_search_queue_depth (\d+)$/m), 0);
  t.true(value(/^flower_search_rejected_total (\d+)$/m) >= 1);
  t.is(value(/^flower_index_docs (\d+)$/m), INDEXED_IMAGES.length);
  t.is(value(/^flower_index_chunks (\d+)$/m), server.searcher.workspace.chunkCount);
  t.true(value(/^flower_search_stage_seconds_total\{stage="encode"\} ([\d.e-]+)$/m) > 0);
});

test.serial('labels in the index are the fixture classes', (t) => {
  const labels = server.searcher.workspace.docs().map((doc) => doc.label);
  t.deepEqual([...new Set(labels)].sort(), ['daffodil', 'daisy', 'sunflower']);
  t.is(classOf(805), 'daisy');
});
