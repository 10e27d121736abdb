import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { FlowError } from '../src/errors.js';
import { builtinFlowsDir, loadFlow, parseFlow } from '../src/flows/spec.js';
import { chunkingOf } from '../src/flows/indexing.js';
import { tempDir } from './e2e-helpers.js';

const base = (extra = '') => `name: t
prefetch: 4
pods:
  loader:
    uses: loader
  normalizer:
    uses: normalizer
  chunker:
    uses: chunker
    with:
      window: 224
      stride: 112
${extra}`;

async function flowError(source: string, file = '/flows/x.yml'): Promise<FlowError> {
  const err = await parseFlow(source, file).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FlowError)) throw new Error(`expected a FlowError, got ${String(err)}`);
  return err;
}

test('the shipped flows parse, in needs order, with defaults filled in', async (t) => {
  const index = await loadFlow(path.join(builtinFlowsDir, 'index.yml'));
  const names = index.pods.map((pod) => pod.name);
  t.deepEqual(names.slice(0, 4), ['loader', 'normalizer', 'chunker', 'encoder']);
  t.true(names.indexOf('join') > names.indexOf('doc_indexer') && names.indexOf('join') > names.indexOf('chunk_indexer'));
  t.deepEqual(index.pods.find((pod) => pod.name === 'doc_indexer')!.needs, ['normalizer']);
  t.deepEqual(index.pods.find((pod) => pod.name === 'join')!.needs, ['chunk_indexer', 'doc_indexer']);
  t.is(index.prefetch, 32);
  t.deepEqual(chunkingOf(index), { shorter_side: 256, window: 224, stride: 112, whole: true });
  const query = await loadFlow(path.join(builtinFlowsDir, 'query.yml'));
  t.deepEqual(chunkingOf(query), chunkingOf(index), 'queries are chunked like the index');
  t.is(query.pods.at(-1)!.name, 'ranker');
  t.deepEqual(query.pods.find((pod) => pod.name === 'ranker')!.params, { top_k: 64, mode: 'expanded' });
});

test('a pod without needs follows the pod above it', async (t) => {
  const flow = await parseFlow(base(), '/flows/x.yml');
  t.deepEqual(
    flow.pods.map((pod) => pod.needs),
    [[], ['loader'], ['normalizer']],
  );
  t.deepEqual(flow.pods[2].params, { window: 224, stride: 112, whole: true, max_chunks: 64 });
});

test('a typo in a with: key is an error naming file, line, key and pod, with a suggestion', async (t) => {
  const err = await flowError(base().replace('stride: 112', 'stirde: 112'));
  t.is(err.message, "/flows/x.yml:12: unknown key 'stirde' in pod 'chunker' with: (did you mean 'stride'?)");
});

test('unknown keys at top level and in a pod are errors with their line', async (t) => {
  t.is((await flowError(`prefech: 3\n${base()}`)).message, "/flows/x.yml:1: unknown key 'prefech' at top level (did you mean 'prefetch'?)");
  t.is((await flowError(base().replace('    uses: normalizer', '    uses: normalizer\n    need: loader'))).message, "/flows/x.yml:8: unknown key 'need' in pod 'normalizer' (did you mean 'needs'?)");
});

test('wrong parameter types and ranges are errors', async (t) => {
  t.regex((await flowError(base().replace('stride: 112', 'stride: "112"'))).message, /^\/flows\/x\.yml:12: pod 'chunker' with: stride must be a number, got "112"$/);
  t.regex((await flowError(base().replace('stride: 112', 'stride: 0'))).message, /:12: pod 'chunker' with: stride must be >= 1, got 0$/);
  t.regex((await flowError(base().replace('prefetch: 4', 'prefetch: 0'))).message, /:2: prefetch must be an integer >= 1/);
});

test('unknown needs, cycles, unknown executors and misplaced replicas are errors', async (t) => {
  t.regex((await flowError(base('  encoder:\n    uses: encoder\n    needs: chunkr\n'))).message, /:15: pod 'encoder' needs unknown pod 'chunkr' \(did you mean 'chunker'\?\)$/);
  const cycle = await flowError(base().replace('    uses: loader', '    uses: loader\n    needs: chunker'));
  t.regex(cycle.message, /needs form a cycle: (loader -> chunker -> normalizer -> loader|.*->.*)/);
  t.regex((await flowError(base().replace('uses: chunker', 'uses: chunkr'))).message, /:9: pod 'chunker': unknown executor 'chunkr' \(did you mean 'chunker'\?\)/);
  t.regex((await flowError(base().replace('uses: chunker', 'uses: chunker\n    replicas: 2'))).message, /:10: pod 'chunker': executor 'chunker' does not use replicas/);
  t.regex((await flowError('pods:\n  a:\n    uses: ./missing-executor.js\n')).message, /^\/flows\/x\.yml:3: pod 'a': cannot load executor module \/flows\/missing-executor\.js/);
  t.regex((await flowError('pods:\n  j:\n    uses: join\n    with:\n      wait: 3\n')).message, /:5: unknown key 'wait' in pod 'j' with:$/, 'built-ins without parameters take none');
  t.regex((await flowError('pods: {}\n')).message, /:1: `pods:` must be a non-empty mapping/);
  t.regex((await flowError('pods:\n  a:\n    uses: loader\n  a:\n    uses: loader\n')).message, /^\/flows\/x\.yml:4: Map keys must be unique/);
});

test('a custom executor module is resolved relative to the flow file and its declared params are checked', async (t) => {
  const dir = await tempDir('spec');
  await fs.writeFile(
    path.join(dir, 'tagger.js'),
    `export default class Tagger {
  static params = { tag: { default: 'x' } };
  constructor(params) { this.tag = params.tag; }
  process(doc) { doc.tags.tag = this.tag; }
}\n`,
  );
  const file = path.join(dir, 'flow.yml');
  const flow = await parseFlow('pods:\n  tagger:\n    uses: ./tagger.js\n    with:\n      tag: hello\n', file);
  t.deepEqual(flow.pods[0].params, { tag: 'hello' });
  const err = await flowError('pods:\n  tagger:\n    uses: ./tagger.js\n    with:\n      tga: hello\n', file);
  t.regex(err.message, /:5: unknown key 'tga' in pod 'tagger' with: \(did you mean 'tag'\?\)$/);
  await fs.writeFile(path.join(dir, 'not-an-executor.js'), 'export default 42;\n');
  t.regex((await flowError('pods:\n  x:\n    uses: ./not-an-executor.js\n', file)).message, /:3: pod 'x': .*not-an-executor\.js must export .* a class with a process\(doc\) method/);
});

test('a missing flow file is a clear error', async (t) => {
  const err = await t.throwsAsync(loadFlow('/nonexistent/flow.yml'), { instanceOf: FlowError });
  t.is(err.message, '/nonexistent/flow.yml: cannot read flow file (ENOENT)');
});
