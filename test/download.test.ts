/** Download code against a local HTTP server serving the fixtures: nothing here touches the internet. */
import test from 'ava';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODEL_REGISTRY, cacheDir, downloadFile, ensureModel, type DownloadProgress, type ModelEntry } from '../src/download/index.js';
import { ChecksumError, NoNetworkError } from '../src/errors.js';
import { loadModel } from '../src/model/index.js';
import { closedPort, startFileServer, type FileServer } from './helpers/file-server.js';
import { holdLock, killAndWait } from './helpers/store-lock.js';
import { flowerImage, modelDir, sharedDir } from '../bench/fixtures.js';

const imagePath = '/datasets/17flowers/jpg/image_0001.jpg';
const image = fs.readFileSync(flowerImage(1));
const imageSha = createHash('sha256').update(image).digest('hex');

let server: FileServer;
test.before(async () => {
  server = await startFileServer(path.resolve(sharedDir));
});
test.after.always(() => server.close());

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'flower-dl-'));
}

/** Run `fn` with fresh request records and the server behaving as asked. */
async function serving<T>(misbehave: FileServer['misbehave'], fn: () => Promise<T>): Promise<{ value: T; requests: FileServer['requests'] }> {
  server.misbehave = misbehave;
  const before = server.requests.length;
  try {
    const value = await fn();
    return { value, requests: server.requests.slice(before) };
  } finally {
    server.misbehave = {};
  }
}

/** The parts of a model.json these tests read. */
interface ModelJson {
  readonly sha256: string;
  readonly input: { readonly name: string; readonly mean: [number, number, number]; readonly std: [number, number, number] };
  readonly outputs: ModelEntry['outputs'];
}

// The registry entry of the default model, pointed at the fixture model (which has its own embedding output).
const fixtureJson = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8')) as ModelJson;
const fixtureEntry = (url: string): ModelEntry => ({
  description: 'fixture model',
  url,
  sha256: fixtureJson.sha256,
  bytes: fs.statSync(path.join(modelDir, 'model.onnx')).size,
  source: { repository: 'fixtures' },
  input: { name: fixtureJson.input.name, width: 224, height: 224, mean: fixtureJson.input.mean, std: fixtureJson.input.std },
  outputs: fixtureJson.outputs,
});

// Serialized: these tests share the server's misbehaviour switch.
test.serial('ensureModel downloads a registry model (through a redirect) with progress, and loadModel reads the result', async (t) => {
  const cache = tempDir();
  const registry = { fixture: fixtureEntry(`${server.url}/redirect/models/mobilenet_v2_1.0_224/model.onnx`) };
  const progress: DownloadProgress[] = [];
  const { value: dir, requests } = await serving({}, () => ensureModel('fixture', { cacheDir: cache, registry, onProgress: (p) => progress.push(p) }));
  t.is(dir, path.join(cache, 'models', 'fixture'));
  t.deepEqual(
    requests.map((r) => r.path),
    ['/redirect/models/mobilenet_v2_1.0_224/model.onnx', '/models/mobilenet_v2_1.0_224/model.onnx'],
  );
  t.true(progress.length > 2);
  t.true(progress.every((p, i) => i === 0 || p.received >= progress[i - 1].received));
  t.deepEqual(progress.at(-1), { url: registry.fixture.url, file: path.join(dir, 'model.onnx'), received: registry.fixture.bytes, total: registry.fixture.bytes });
  t.deepEqual(fs.readdirSync(dir).sort(), ['model.json', 'model.onnx']);

  const model = await loadModel(dir);
  t.is(model.sha256, fixtureJson.sha256);
  t.is(model.input.name, 'pixel_values');
  t.deepEqual(model.embedding, { name: 'embedding', dim: 1280, synthesized: false });

  // Already there: no request.
  const again = await serving({}, () => ensureModel('fixture', { cacheDir: cache, registry }));
  t.is(again.value, dir);
  t.is(again.requests.length, 0);
});

test.serial('two fills of the same cache entry at once: one downloads, the other waits and finds it ready', async (t) => {
  const cache = tempDir();
  const registry = { fixture: fixtureEntry(`${server.url}/models/mobilenet_v2_1.0_224/model.onnx`) };
  const waits: string[] = [];
  const { value: dirs, requests } = await serving({}, () =>
    Promise.all([ensureModel('fixture', { cacheDir: cache, registry }), ensureModel('fixture', { cacheDir: cache, registry, onWait: (message) => waits.push(message) })]),
  );
  const dir = path.join(cache, 'models', 'fixture');
  t.deepEqual(dirs, [dir, dir]);
  t.deepEqual(
    requests.map((r) => r.range),
    [undefined],
  );
  t.deepEqual(waits, [`waiting for process ${process.pid}, which is downloading model fixture into ${dir}`]);
  t.is((await loadModel(dir)).sha256, fixtureJson.sha256);
  t.deepEqual(fs.readdirSync(path.join(cache, 'models')).sort(), ['fixture']);

  // A lock left by a process that is gone (kill -9) does not hold anyone up.
  const other = tempDir();
  fs.mkdirSync(path.join(other, 'locks'));
  await killAndWait(await holdLock(path.join(other, 'locks', 'models-fixture.lock')));
  fs.mkdirSync(path.join(other, 'models'));
  const late: string[] = [];
  await serving({}, () => ensureModel('fixture', { cacheDir: other, registry, onWait: (message) => late.push(message) }));
  t.deepEqual(late, []);
  t.deepEqual(fs.readdirSync(path.join(other, 'models')), ['fixture']);
});

test.serial('the built-in mobilenetv2-7 entry: its size and sha256 are enforced, its model.json has ImageNet normalization and no embedding output', async (t) => {
  const cache = tempDir();
  const fixtureUrl = `${server.url}/models/mobilenet_v2_1.0_224/model.onnx`;
  // The fixture bytes under the registry's checksum are refused.
  const err = await t.throwsAsync(ensureModel('mobilenetv2-7', { cacheDir: cache, url: fixtureUrl }));
  t.true(err instanceof ChecksumError);
  t.regex(err.message, /expected 14246826 bytes, got 13968038 bytes/);
  t.false(fs.existsSync(path.join(cache, 'models', 'mobilenetv2-7', 'model.json')));
  await t.throwsAsync(ensureModel('resnet-9000', { cacheDir: cache }), { message: /unknown model "resnet-9000": the known models are mobilenetv2-7/ });

  // The same entry with the fixture's checksum shows the model.json it writes.
  const entry = MODEL_REGISTRY['mobilenetv2-7'];
  t.like(entry, { sha256: 'c1c513582d56afceff8516c73804e484c81c6a830712ab6d682253f4a3cd042f', bytes: 14246826 });
  const dir = await ensureModel('mobilenetv2-7', { cacheDir: cache, url: fixtureUrl, registry: { 'mobilenetv2-7': { ...entry, sha256: fixtureJson.sha256, bytes: fixtureEntry('').bytes } } });
  // t.like checks the written model.json; only `outputs` is read by key, and `embedding` must be absent.
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as { readonly outputs: Partial<ModelEntry['outputs']> };
  t.like(json, {
    name: 'mobilenetv2-7',
    file: 'model.onnx',
    sha256: fixtureJson.sha256,
    input: {
      name: 'input',
      layout: 'NCHW',
      width: 224,
      height: 224,
      channels: 'RGB',
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      mean_255: [123.675, 116.28, 103.53],
      std_255: [58.395, 57.12, 57.375],
    },
    source: { url: entry.url },
  });
  t.is(json.outputs.embedding, undefined);
});

test.serial('a connection cut mid-file is resumed with a Range request', async (t) => {
  const dest = path.join(tempDir(), 'image.jpg');
  const cut = Math.floor(image.length / 3);
  const { requests } = await serving({ cutAfter: cut, cuts: 1 }, () => downloadFile({ url: `${server.url}${imagePath}`, dest, sha256: imageSha }));
  t.deepEqual(
    requests.map((r) => r.range),
    [undefined, `bytes=${cut}-`],
  );
  t.deepEqual(fs.readFileSync(dest), image);
  t.false(fs.existsSync(`${dest}.part`));
});

test.serial('a partial from an earlier run is resumed; one whose bytes are bad is restarted from zero', async (t) => {
  const dest = path.join(tempDir(), 'image.jpg');
  fs.writeFileSync(`${dest}.part`, image.subarray(0, 1000));
  const resumed = await serving({}, () => downloadFile({ url: `${server.url}${imagePath}`, dest, sha256: imageSha }));
  t.deepEqual(
    resumed.requests.map((r) => r.range),
    ['bytes=1000-'],
  );
  t.deepEqual(fs.readFileSync(dest), image);

  // Complete already (killed before the rename), size unknown: the server's 416 says so.
  const dest3 = path.join(tempDir(), 'image.jpg');
  fs.writeFileSync(`${dest3}.part`, image);
  const complete = await serving({}, () => downloadFile({ url: `${server.url}${imagePath}`, dest: dest3, sha256: imageSha }));
  t.deepEqual(
    complete.requests.map((r) => r.range),
    [`bytes=${image.length}-`],
  );
  t.deepEqual(fs.readFileSync(dest3), image);

  const dest2 = path.join(tempDir(), 'image.jpg');
  fs.writeFileSync(`${dest2}.part`, Buffer.alloc(1000, 7));
  const restarted = await serving({}, () => downloadFile({ url: `${server.url}${imagePath}`, dest: dest2, sha256: imageSha }));
  t.deepEqual(
    restarted.requests.map((r) => r.range),
    ['bytes=1000-', undefined],
  );
  t.deepEqual(fs.readFileSync(dest2), image);
});

test.serial('a server that ignores Range sends the whole file, which replaces the partial', async (t) => {
  const dest = path.join(tempDir(), 'image.jpg');
  fs.writeFileSync(`${dest}.part`, image.subarray(0, 1000));
  const { requests } = await serving({ ignoreRange: true }, () => downloadFile({ url: `${server.url}${imagePath}`, dest, sha256: imageSha }));
  t.deepEqual(
    requests.map((r) => r.range),
    ['bytes=1000-'],
  );
  t.deepEqual(fs.readFileSync(dest), image);

  // And cut mid-file, it restarts from zero each time rather than appending a second copy.
  const dest2 = path.join(tempDir(), 'image.jpg');
  const cut = await serving({ ignoreRange: true, cutAfter: 5000, cuts: 2 }, () => downloadFile({ url: `${server.url}${imagePath}`, dest: dest2, sha256: imageSha }));
  t.is(cut.requests.length, 3);
  t.deepEqual(fs.readFileSync(dest2), image);
});

test.serial('a checksum mismatch deletes the download and says what was expected', async (t) => {
  const dest = path.join(tempDir(), 'image.jpg');
  const wrong = '0'.repeat(64);
  const err = await t.throwsAsync(downloadFile({ url: `${server.url}${imagePath}`, dest, sha256: wrong }), { instanceOf: ChecksumError });
  t.regex(err.message, new RegExp(`checksum mismatch for .*image_0001\\.jpg: expected sha256 ${wrong}, got sha256 ${imageSha}; the download was deleted`));
  t.false(fs.existsSync(dest));
  t.false(fs.existsSync(`${dest}.part`));
});

test.serial('connection refused, a silent server and HTTP errors give clear messages', async (t) => {
  const dest = path.join(tempDir(), 'model.onnx');
  const port = await closedPort();
  const refused = await t.throwsAsync(downloadFile({ url: `http://127.0.0.1:${port}/model.onnx`, dest }), { instanceOf: NoNetworkError });
  t.regex(refused.message, new RegExp(`^no network: cannot reach http://127\\.0\\.0\\.1:${port}/model\\.onnx \\(ECONNREFUSED\\): pass --data/--model, or set FLOWER_NATIVE_CACHE`));

  const cache = tempDir();
  const viaModel = await t.throwsAsync(ensureModel('fixture', { cacheDir: cache, registry: { fixture: fixtureEntry(`http://127.0.0.1:${port}/m.onnx`) } }), { instanceOf: NoNetworkError });
  t.regex(viaModel.message, /pass --model <folder>, or set FLOWER_NATIVE_CACHE to a folder that has models\/fixture\/model\.onnx/);

  await serving({ silent: true }, async () => {
    await t.throwsAsync(downloadFile({ url: `${server.url}${imagePath}`, dest, timeoutMs: 300 }), { instanceOf: NoNetworkError, message: /no answer in 0\.3 s/ });
  });
  await t.throwsAsync(downloadFile({ url: `${server.url}/nope.onnx`, dest }), { message: /^HTTP 404 Not Found downloading http:\/\/127\.0\.0\.1:\d+\/nope\.onnx$/ });
  t.false(fs.existsSync(dest));
});

test('the cache folder is ~/.cache/flower-native unless $FLOWER_NATIVE_CACHE or an option says otherwise', (t) => {
  const saved = { cache: process.env.FLOWER_NATIVE_CACHE, xdg: process.env.XDG_CACHE_HOME };
  try {
    delete process.env.FLOWER_NATIVE_CACHE;
    delete process.env.XDG_CACHE_HOME;
    t.is(cacheDir(), path.join(os.homedir(), '.cache', 'flower-native'));
    process.env.FLOWER_NATIVE_CACHE = '/tmp/fn-cache';
    t.is(cacheDir(), '/tmp/fn-cache');
    t.is(cacheDir('/elsewhere'), '/elsewhere');
  } finally {
    for (const [key, value] of [
      ['FLOWER_NATIVE_CACHE', saved.cache],
      ['XDG_CACHE_HOME', saved.xdg],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
});
