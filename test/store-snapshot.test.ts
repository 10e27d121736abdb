/**
 * What a reader holds cannot change under it: it keeps the chunk matrix it opened (a swap renames a
 * new one in beside it), and a matrix shrunk in place under it (copied over) fails the next search
 * with a clear error instead of killing the process with SIGBUS. A bad chunks.npy is reported as
 * itself, not as the database.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NoIndexError } from '../src/errors.js';
import { Workspace } from '../src/store/index.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';

const readerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'shrink-reader.js');
const DIM = 256;
const model = testModel(DIM);

function build(ids: number[], dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-snapshot-'))): string {
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  ws.addDocs(ids.map((i) => makeDoc(i, DIM)));
  ws.close();
  return dir;
}

test('chunks.npy shrunk in place under a reader: the next search fails with a clear error and the process stays up', async (t) => {
  const big = build(Array.from({ length: 400 }, (_, i) => i)); // ~1000 rows, 1 MB: many pages past the small file's end
  const small = build([0]);
  const child = spawn(process.execPath, [readerScript, big], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const nextLine = () =>
    new Promise<string>((resolve) => {
      const check = () => {
        const lines = output.split('\n');
        if (lines.length > 1) {
          output = lines.slice(1).join('\n');
          resolve(lines[0]);
        } else
          child.stdout.once('data', (text: string) => {
            output += text;
            check();
          });
      };
      check();
    });
  child.stdout.setEncoding('utf8');
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  t.is(await nextLine(), 'ok 0', stderr);
  fs.copyFileSync(path.join(small, 'chunks.npy'), path.join(big, 'chunks.npy')); // in place: same inode, now 2 rows
  child.stdin.write('search\n');
  const answer = await Promise.race([nextLine(), exited.then((e) => `exited ${e.code ?? e.signal}`)]);
  t.regex(answer, /^error no_index index at .* is damaged: .*chunks\.npy shrank to \d+ bytes under this reader/);
  child.stdin.write('search\n');
  t.regex(await nextLine(), /^error no_index /, 'and every later search, without crashing');
  child.stdin.end();
  t.is(await nextLine(), 'alive');
  t.deepEqual(await exited, { code: 0, signal: null });
});

test('a reader keeps the matrix it opened when another is renamed in its place', (t) => {
  const dir = build([0, 1, 2]);
  const reader = Workspace.openForRead(dir);
  const other = build([7, 8, 9]);
  fs.renameSync(path.join(other, 'chunks.npy'), path.join(dir, 'chunks.npy'));
  const expected = [0, 1, 2].flatMap((i) => Array.from(makeDoc(i, DIM).vectors));
  t.deepEqual(Array.from(reader.matrix()), expected);
  reader.close();
});

test('a bad chunks.npy header names chunks.npy and what is wrong with it', (t) => {
  const dir = build([0]);
  const file = path.join(dir, 'chunks.npy');
  const bytes = fs.readFileSync(file);
  bytes.write('NOTNPY', 1, 'latin1');
  fs.writeFileSync(file, bytes);
  for (const open of [() => Workspace.openForRead(dir), () => Workspace.openForWrite(dir, { model, chunking: testChunking })]) {
    const err = t.throws(open, { instanceOf: NoIndexError });
    t.regex(err.message, new RegExp(`index at .* is damaged: ${file.replace(/[.]/g, '\\.')}: not a \\.npy file \\(bad magic\\); re-index with --rebuild`));
    t.notRegex(err.message, /index\.sqlite/);
  }
});
