/** Nearest chunks from pgvector: exact mode equals the kernels' brute-force top-k, HNSW mode keeps recall, hits feed BiMatch. */
import type { ExecutionContext } from 'ava';
import { tsKernels } from '../src/kernels/index.js';
import type { NewDoc } from '../src/store/index.js';
import { PostgresStore, type ChunkHits } from '../src/store/postgres/index.js';
import { prng } from './helpers/prng.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';
import { createTestDatabase, postgresTest, randomUnitRows } from './helpers/postgres.js';

const test = postgresTest('postgres-topk');
const dim = 32;

/** A store holding `docs`, and the same chunks as one matrix in chunk id order (what a local index would hold). */
async function storeWith(t: ExecutionContext, docs: NewDoc[], vectorType: 'vector' | 'halfvec' = 'vector') {
  const { url } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, { model: testModel(dim), chunking: testChunking, vectorType });
  t.teardown(() => store.close());
  for (let i = 0; i < docs.length; i += 400) await store.addDocs(docs.slice(i, i + 400));
  const bySha = new Map(docs.map((d) => [d.sha256, d]));
  const records = await store.docs(Array.from({ length: docs.length * 2 }, (_, i) => i + 1));
  const chunks = (await store.docChunks(records.map((r) => r.id))).sort((a, b) => a.id - b.id);
  const docOf = new Map(records.map((r) => [r.id, r]));
  const matrix = new Float32Array(chunks.length * dim);
  chunks.forEach((c, row) => matrix.set(bySha.get(docOf.get(c.doc)!.sha256)!.vectors.subarray(c.ord * dim, (c.ord + 1) * dim), row * dim));
  return { store, chunks, matrix, records };
}

/** Query q's hits as store chunk ids, best first. */
function hitIds(hits: ChunkHits, q: number): number[] {
  const k = hits.topk.k;
  return Array.from(hits.topk.ids.subarray(q * k, (q + 1) * k), (slot) => (slot < 0 ? -1 : hits.chunkIds[slot]));
}

function recall(approx: ChunkHits, exact: ChunkHits, queries: number): number {
  let found = 0;
  let total = 0;
  for (let q = 0; q < queries; q++) {
    const truth = new Set(hitIds(exact, q));
    for (const id of hitIds(approx, q)) if (truth.has(id)) found++;
    total += truth.size;
  }
  return found / total;
}

test('exact top-k is the brute-force top-k (same ids, same scores), with or without an HNSW index; hits feed BiMatch as a local index would', async (t) => {
  const docs = Array.from({ length: 1000 }, (_, i) => makeDoc(i, dim));
  const { store, chunks, matrix } = await storeWith(t, docs);
  t.is(
    chunks.length,
    docs.reduce((n, d) => n + d.chunks.length, 0),
  );
  const Q = 8;
  const k = 25;
  const queries = randomUnitRows(prng(11), Q, dim);
  const truth = tsKernels.cosineTopK({ matrix, rows: chunks.length, dim, queries, k });
  const checkExact = (hits: ChunkHits) => {
    for (let q = 0; q < Q; q++) {
      t.deepEqual(
        hitIds(hits, q),
        Array.from(truth.ids.subarray(q * k, (q + 1) * k), (row) => chunks[row].id),
        `query ${q}`,
      );
      for (let s = 0; s < k; s++) t.true(Math.abs(hits.topk.scores[q * k + s] - truth.scores[q * k + s]) < 1e-5);
    }
  };
  const exact = await store.topK(queries, k);
  checkExact(exact);
  hitIds(exact, 0).forEach((id) => t.is(exact.chunkKinds[exact.chunkIds.indexOf(id)], chunks.find((c) => c.id === id)!.kind));

  // BiMatch over the compact hits ranks the docs exactly as over the whole index.
  const docIdsByRow = Int32Array.from(chunks, (c) => c.doc);
  const docIds = [...new Set(chunks.map((c) => c.doc))].sort((a, b) => a - b);
  const globalDoc = new Map(docIds.map((id, i) => [id, i]));
  const local = tsKernels.biMatch({
    topk: truth,
    queryChunks: Q,
    chunkDoc: docIdsByRow.map((id) => globalDoc.get(id)!),
    docChunkCounts: Int32Array.from(docIds, (id) => chunks.filter((c) => c.doc === id).length),
  });
  const remote = tsKernels.biMatch({ topk: exact.topk, queryChunks: Q, chunkDoc: exact.chunkDoc, docChunkCounts: exact.docChunkCounts });
  t.deepEqual(
    Array.from(remote.docs, (d) => exact.docIds[d]),
    Array.from(local.docs, (d) => docIds[d]),
  );
  remote.scores.forEach((score, i) => t.true(Math.abs(score - local.scores[i]) < 1e-6));
  t.deepEqual(
    Array.from(remote.bestChunks, (slot) => exact.chunkIds[slot]),
    Array.from(local.bestChunks, (row) => chunks[row].id),
  );

  // A deliberately poor index: HNSW mode misses some (so it does use the index), exact mode still does not.
  await store.buildHnswIndex({ m: 4, efConstruction: 8 });
  t.true(await store.hasHnswIndex());
  t.true(recall(await store.topK(queries, k, { mode: 'hnsw' }), exact, Q) < 1, 'HNSW mode found every exact hit through a poor index: is it scanning?');
  checkExact(await store.topK(queries, k));
});

test('HNSW recall@k against exact is at least 0.98 on a few thousand random rows', async (t) => {
  const n = 4000;
  const rows = randomUnitRows(prng(7), n, dim);
  const docs = Array.from({ length: n }, (_, i) => ({
    ...makeDoc(i, dim),
    chunks: [{ kind: 'window' as const, box: { x: 0, y: 0, width: 224, height: 224 } }],
    vectors: rows.slice(i * dim, (i + 1) * dim),
  }));
  const { store } = await storeWith(t, docs);
  const Q = 32;
  const k = 10;
  const queries = randomUnitRows(prng(8), Q, dim);
  const exact = await store.topK(queries, k);
  await store.buildHnswIndex();
  const approx = await store.topK(queries, k, { mode: 'hnsw', efSearch: 100 });
  const measured = recall(approx, exact, Q);
  t.log(`recall@${k} = ${measured.toFixed(4)} (ef_search 100, m 16, ef_construction 64, ${n} rows of ${dim}-d)`);
  t.true(measured >= 0.98, `recall ${measured}`);
  // ef_search below k would cut every list short: it is raised to k.
  const short = await store.topK(queries, k, { mode: 'hnsw', efSearch: 2 });
  t.false(short.topk.ids.includes(-1));
});

test('whole-image top-k: exact equals brute force over the whole chunks, HNSW through their own index fills every slot', async (t) => {
  const docs = Array.from({ length: 1500 }, (_, i) => makeDoc(i, dim));
  const { store, chunks, matrix } = await storeWith(t, docs);
  const whole = chunks.map((c, row) => ({ c, row })).filter(({ c }) => c.kind === 'whole');
  const wholeMatrix = new Float32Array(whole.length * dim);
  whole.forEach(({ row }, i) => wholeMatrix.set(matrix.subarray(row * dim, (row + 1) * dim), i * dim));
  const Q = 16;
  const k = 10;
  const queries = randomUnitRows(prng(21), Q, dim);
  const truth = tsKernels.cosineTopK({ matrix: wholeMatrix, rows: whole.length, dim, queries, k });
  const exact = await store.topK(queries, k, { wholeOnly: true });
  for (let q = 0; q < Q; q++)
    t.deepEqual(
      hitIds(exact, q),
      Array.from(truth.ids.subarray(q * k, (q + 1) * k), (i) => whole[i].c.id),
    );
  await store.buildHnswIndex();
  // ef_search = k: a scan of the all-chunks index, filtered, would run out of whole chunks, and a
  // full scan (no index of their own) would miss none.
  const narrow = await store.topK(queries, k, { mode: 'hnsw', efSearch: k, wholeOnly: true });
  t.false(narrow.topk.ids.includes(-1), 'a filtered scan of the all-chunks index ran out of rows');
  t.true(recall(narrow, exact, Q) < 1, 'no approximate miss at ef_search = k: the whole chunks were scanned, not searched in their index');
  t.true(narrow.chunkKinds.every((kind) => kind === 'whole'));
  t.true(recall(await store.topK(queries, k, { mode: 'hnsw', efSearch: 100, wholeOnly: true }), exact, Q) >= 0.98);
});

test('fewer stored chunks than k: the rest of the slots are unfilled (-1, -Infinity), as the kernels leave them', async (t) => {
  const { store } = await storeWith(t, [makeDoc(0, dim)]); // 2 chunks
  const hits = await store.topK(randomUnitRows(prng(3), 2, dim), 4);
  t.is(hits.topk.k, 4);
  for (const q of [0, 1]) {
    const ids = Array.from(hits.topk.ids.subarray(q * 4, q * 4 + 4));
    t.deepEqual([...ids.slice(0, 2)].sort(), [0, 1]);
    t.deepEqual(ids.slice(2), [-1, -1]);
    t.deepEqual(Array.from(hits.topk.scores.subarray(q * 4 + 2, q * 4 + 4)), [-Infinity, -Infinity]);
  }
  t.deepEqual(hits.docChunkCounts, Int32Array.of(2));
  await t.throwsAsync(store.topK(new Float32Array(dim + 1), 4), { instanceOf: RangeError });
  await t.throwsAsync(store.topK(new Float32Array(dim), 1001, { mode: 'hnsw' }), { instanceOf: RangeError });
});

test('halfvec: exact top-k keeps recall against float32 brute force', async (t) => {
  const docs = Array.from({ length: 800 }, (_, i) => makeDoc(i, dim));
  const { store, chunks, matrix } = await storeWith(t, docs, 'halfvec');
  const Q = 8;
  const k = 20;
  const queries = randomUnitRows(prng(5), Q, dim);
  const truth = tsKernels.cosineTopK({ matrix, rows: chunks.length, dim, queries, k });
  const hits = await store.topK(queries, k);
  let found = 0;
  for (let q = 0; q < Q; q++) {
    const expected = new Set(Array.from(truth.ids.subarray(q * k, (q + 1) * k), (row) => chunks[row].id));
    found += hitIds(hits, q).filter((id) => expected.has(id)).length;
  }
  t.true(found / (Q * k) >= 0.98, `recall ${found / (Q * k)}`);
});
