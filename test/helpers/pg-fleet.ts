/** The fleet tests' tools: CLI processes against a store, and the check that a store holds exactly a local index. */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import pg from 'pg';
import { cliPath } from '../e2e-helpers.js';
import { Workspace } from '../../src/store/index.js';

export interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

/** Poll an observable condition every 50 ms until it gives a value; fail after `timeoutMs`, or at once when one of `alive` has exited. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, opts: { timeoutMs: number; alive?: readonly Proc[] }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    const gone = opts.alive?.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (gone) throw new Error(`waiting for ${what}: a process exited (${gone.child.exitCode ?? gone.child.signalCode}):\n${gone.output()}`);
    if (Date.now() > deadline) throw new Error(`waiting for ${what}: not there after ${opts.timeoutMs / 1000} s`);
    await sleep(50);
  }
}

/** The job a `worker` process is working on now, from its lines (`job <id>: took …`, then `job <id>: … indexed` or `job <id> failed`). */
export function jobInHand(worker: Proc): string | undefined {
  const lines = [...worker.output().matchAll(/^flower-native worker: job (\S+?):? (took|\d+\/\d+ images indexed|failed)/gm)];
  const last = lines.at(-1);
  return last?.[2] === 'took' ? last[1] : undefined;
}

/** Start the CLI; its stdout and stderr are collected together. Killed at teardown if still running. */
export function startCli(t: ExecutionContext, args: string[]): Proc {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString()));
  child.stderr.on('data', (b: Buffer) => (text += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => text, exited };
}

export async function pgQuery<R extends pg.QueryResultRow>(url: string, sql: string, values?: unknown[]): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * The store holds the local workspace's docs, each once (by sha256, with the same path, size,
 * label and chunks), and each chunk's vector equals the local row within 1e-6.
 */
export async function assertStoreEqualsWorkspace(t: ExecutionContext, url: string, workspaceDir: string): Promise<void> {
  const ws = Workspace.openForRead(workspaceDir);
  try {
    const local = ws.docs();
    const matrix = ws.matrix();
    const dim = ws.manifest.model.dim;
    const docs = await pgQuery<{ id: number; path: string; sha256: string; width: number; height: number; label: string | null; chunk_count: number }>(
      url,
      'SELECT id::int, path, sha256, width, height, label, chunk_count FROM flower.docs ORDER BY sha256',
    );
    t.deepEqual(
      docs.map((d) => d.sha256),
      local.map((d) => d.sha256).sort(),
      'the same docs, each once',
    );
    const [counts] = await pgQuery<{ rows: number; distinct: number; expected: number }>(
      url,
      'SELECT count(*)::int AS rows, count(DISTINCT (doc, ord))::int AS distinct, (SELECT sum(chunk_count)::int FROM flower.docs) AS expected FROM flower.chunks',
    );
    t.deepEqual(counts, { rows: ws.chunkCount, distinct: ws.chunkCount, expected: ws.chunkCount }, 'no chunk missing or twice');
    const bySha = new Map(docs.map((d) => [d.sha256, d]));
    let worst = 0;
    let boxesDiffer = 0;
    for (const doc of local) {
      const stored = bySha.get(doc.sha256)!;
      t.deepEqual(
        { path: stored.path, width: stored.width, height: stored.height, label: stored.label, chunks: stored.chunk_count },
        { path: doc.path, width: doc.width, height: doc.height, label: doc.label, chunks: doc.chunkCount },
      );
      const chunks = await pgQuery<{ ord: number; kind: string; x: number; y: number; w: number; h: number; embedding: string }>(
        url,
        'SELECT ord, kind, x, y, w, h, embedding::text AS embedding FROM flower.chunks WHERE doc = $1 ORDER BY ord',
        [stored.id],
      );
      const localChunks = ws.docChunks(doc.id);
      chunks.forEach((c, i) => {
        const l = localChunks[i];
        if (c.kind !== l.kind || c.x !== l.box.x || c.y !== l.box.y || c.w !== l.box.width || c.h !== l.box.height) boxesDiffer++;
        const vector = JSON.parse(c.embedding) as number[];
        const row = matrix.subarray((doc.firstChunk + i) * dim, (doc.firstChunk + i + 1) * dim);
        for (let j = 0; j < dim; j++) worst = Math.max(worst, Math.abs(vector[j] - row[j]));
      });
    }
    t.is(boxesDiffer, 0, 'every chunk has the local kind and box');
    t.true(worst <= 1e-6, `every vector within 1e-6 of the local index (worst ${worst})`);
  } finally {
    ws.close();
  }
}
