/** Writing to the Postgres store: one transaction per job, COPY of the chunks, idempotent by content hash; moves and deletions. */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { PostgresStore } from '../src/store/postgres/index.js';
import { halfBits } from '../src/store/postgres/copy.js';
import { docSha, makeDoc, testChunking, testModel } from './helpers/store-docs.js';
import { createTestDatabase, postgresTest } from './helpers/postgres.js';

const test = postgresTest('postgres-ingest');
const dim = 16;
const opts = { model: testModel(dim), chunking: testChunking };
const job = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => makeDoc(from + i, dim));

interface RawCounts {
  docs: number;
  chunks: number;
  distinctChunks: number;
  expectedChunks: number;
}

async function rawCounts(url: string): Promise<RawCounts> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<RawCounts>(`SELECT (SELECT count(*)::int FROM flower.docs) AS docs, (SELECT count(*)::int FROM flower.chunks) AS chunks,
      (SELECT count(DISTINCT (doc, ord))::int FROM flower.chunks) AS "distinctChunks", (SELECT coalesce(sum(chunk_count), 0)::int FROM flower.docs) AS "expectedChunks"`);
    return rows[0];
  } finally {
    await client.end();
  }
}

test('the same job written twice (a retry) adds nothing the second time', async (t) => {
  const { url } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, opts);
  t.teardown(() => store.close());
  const docs = job(0, 20);
  const first = await store.addDocs(docs);
  t.deepEqual(
    first.map((d) => d.sha256),
    docs.map((d) => d.sha256),
  );
  const chunks = docs.reduce((n, d) => n + d.chunks.length, 0);
  t.deepEqual(await rawCounts(url), { docs: 20, chunks, distinctChunks: chunks, expectedChunks: chunks });
  t.deepEqual(await store.addDocs(docs), []);
  // Partly new: only the new docs are written; a repeat inside one job counts once.
  const added = await store.addDocs([...job(15, 25), makeDoc(24, dim)]);
  t.deepEqual(
    added.map((d) => d.sha256),
    job(20, 25).map((d) => d.sha256),
  );
  const total = job(0, 25).reduce((n, d) => n + d.chunks.length, 0);
  t.deepEqual(await rawCounts(url), { docs: 25, chunks: total, distinctChunks: total, expectedChunks: total });
  t.deepEqual(await store.counts(), { docs: 25, chunks: total });
});

test('two workers writing the same job at the same moment write it once', async (t) => {
  const { url } = await createTestDatabase(t);
  const a = await PostgresStore.openForWrite(url, opts);
  const b = await PostgresStore.openForWrite(url, opts);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const docs = job(0, 30);
  const [fromA, fromB] = await Promise.all([a.addDocs(docs), b.addDocs([...docs].reverse())]);
  t.is(fromA.length + fromB.length, 30);
  const chunks = docs.reduce((n, d) => n + d.chunks.length, 0);
  t.deepEqual(await rawCounts(url), { docs: 30, chunks, distinctChunks: chunks, expectedChunks: chunks });
});

test('a job that fails part way leaves nothing behind', async (t) => {
  const { url } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, opts);
  t.teardown(() => store.close());
  const bad = makeDoc(1, dim);
  // Passes the doc checks but cannot be encoded for COPY (an int4 column): fails after the docs' INSERT.
  bad.chunks[0] = { ...bad.chunks[0], box: { ...bad.chunks[0].box, x: 2 ** 40 } };
  await t.throwsAsync(store.addDocs([makeDoc(0, dim), bad]));
  t.deepEqual(await rawCounts(url), { docs: 0, chunks: 0, distinctChunks: 0, expectedChunks: 0 });
  t.is((await store.addDocs([makeDoc(0, dim), makeDoc(1, dim)])).length, 2);
});

test('docs and chunks read back as written: metadata, chunk order, boxes, float32 vectors bit for bit', async (t) => {
  const { url } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, opts);
  t.teardown(() => store.close());
  const docs = job(0, 6);
  const added = await store.addDocs(docs);
  const records = await store.docs([added[3].id, added[0].id, 999_999]);
  t.deepEqual(
    records.map((r) => r.path),
    [docs[3].path, docs[0].path],
  );
  t.like(records[0], { sha256: docSha(3), bytes: docs[3].bytes, width: docs[3].width, height: docs[3].height, label: docs[3].label, chunkCount: docs[3].chunks.length });
  const chunks = await store.docChunks([added[3].id], { vectors: true });
  t.deepEqual(
    chunks.map((c) => ({ kind: c.kind, box: c.box })),
    docs[3].chunks,
  );
  t.deepEqual(
    chunks.map((c) => c.ord),
    docs[3].chunks.map((_, i) => i),
  );
  chunks.forEach((c, i) => t.deepEqual(c.vector, docs[3].vectors.subarray(i * dim, (i + 1) * dim)));
});

test("halfvec: COPY writes the same float16 values as pgvector's own float → half cast", async (t) => {
  const { url } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, { ...opts, vectorType: 'halfvec' });
  t.teardown(() => store.close());
  const doc = makeDoc(7, dim);
  // Values that round in every way: ties to even, subnormals, the largest half, zero and a negative zero.
  doc.vectors.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -20, -(2 ** -24) * 1.5, 65504, 0, -0, 1e-8], 0);
  const [added] = await store.addDocs([doc]);
  const stored = await store.docChunks([added.id], { vectors: true });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.teardown(() => client.end());
  for (let r = 0; r < doc.chunks.length; r++) {
    const row = doc.vectors.subarray(r * dim, (r + 1) * dim);
    const literal = `[${Array.from(row, (v) => (Object.is(v, -0) ? '-0' : String(v))).join(',')}]`;
    const { rows } = await client.query<{ half: string }>(`SELECT ($1::vector::halfvec)::text AS half`, [literal]);
    t.deepEqual(stored[r].vector, Float32Array.from(JSON.parse(rows[0].half) as number[]), `row ${r}`);
  }
  t.is(halfBits(new Uint32Array(new Float32Array([1 + 2 ** -11]).buffer)[0]), 0x3c00, 'a tie rounds to even');
});

test('reconcile: moved files get their new path, gone files are deleted with their chunks, new contents are listed to index', async (t) => {
  const { url } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, opts);
  t.teardown(() => store.close());
  const added = await store.addDocs(job(0, 5));
  const newSha = createHash('sha256').update('new content').digest('hex');
  const listing = [
    { path: 'img/doc-0.jpg', sha256: docSha(0) }, // unchanged
    { path: 'moved/doc-1.jpg', sha256: docSha(1) }, // moved
    // doc 2 is gone
    { path: 'img/doc-3.jpg', sha256: docSha(3) }, // still there, and a copy elsewhere: stays put
    { path: 'copy/doc-3.jpg', sha256: docSha(3) },
    { path: 'b/doc-4.jpg', sha256: docSha(4) }, // moved, to two places: the first path wins
    { path: 'a/doc-4.jpg', sha256: docSha(4) },
    { path: 'new/one.jpg', sha256: newSha }, // to index, once for its two paths
    { path: 'new/one-again.jpg', sha256: newSha },
  ];

  const kept = await store.reconcile(listing, { keepMissing: true });
  t.deepEqual(kept.removed, []);
  t.deepEqual(kept.moved, [
    { id: added[1].id, from: 'img/doc-1.jpg', to: 'moved/doc-1.jpg' },
    { id: added[4].id, from: 'img/doc-4.jpg', to: 'a/doc-4.jpg' },
  ]);
  t.deepEqual(kept.toIndex, [{ path: 'new/one-again.jpg', sha256: newSha }]);
  t.is((await store.counts()).docs, 5);

  const result = await store.reconcile(listing);
  t.deepEqual(result.moved, [], 'a second pass finds nothing left to move');
  t.deepEqual(result.removed, [{ id: added[2].id, path: 'img/doc-2.jpg', sha256: docSha(2) }]);
  t.deepEqual(
    (await store.docs(added.map((d) => d.id))).map((d) => d.path),
    ['img/doc-0.jpg', 'moved/doc-1.jpg', 'img/doc-3.jpg', 'a/doc-4.jpg'],
  );
  t.deepEqual(await store.docChunks([added[2].id]), []);
  const counts = await rawCounts(url);
  t.is(counts.chunks, counts.expectedChunks, 'chunks of the deleted doc are left');
});

test('deleteDocs removes docs with their chunks', async (t) => {
  const { url } = await createTestDatabase(t);
  const store = await PostgresStore.openForWrite(url, opts);
  t.teardown(() => store.close());
  const added = await store.addDocs(job(0, 4));
  t.is(await store.deleteDocs([added[0].id, added[2].id, 123_456]), 2);
  const counts = await rawCounts(url);
  t.deepEqual([counts.docs, counts.chunks], [2, added[1].chunkCount + added[3].chunkCount]);
  // A deleted doc's content can come back (a file restored).
  t.is((await store.addDocs([makeDoc(0, dim)])).length, 1);
});
