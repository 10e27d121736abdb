/**
 * Re-running `index` over a folder that changed: docs whose files are gone are removed (never in
 * results again), a moved file keeps its doc under the new path, and the summary says so;
 * --keep-missing keeps them. Symbolic links in the folder are followed. `index` refuses a damaged index.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { indexImages } from '../src/flows/indexing.js';
import { openIndex } from '../src/flows/search.js';
import { NPY_DATA_OFFSET, Workspace } from '../src/store/index.js';
import { makeDataDir, modelDir, runCli, subset, tempDir } from './e2e-helpers.js';

const index = (data: string, workspace: string, extra: { keepMissing?: boolean } = {}) => indexImages({ data, workspace, model: modelDir, replicas: 1, ...extra });

test('a re-run drops the docs of deleted files, moves the doc of a moved file, says so, and queries agree', async (t) => {
  const data = await makeDataDir(subset(4, 2)); // 8 images
  const workspace = path.join(await tempDir('changes'), 'ws');
  const first = await index(data, workspace);
  t.is(first.indexed, 8);
  t.deepEqual([first.moved, first.removed], [[], []]);
  const files = fs
    .readdirSync(path.join(data, 'jpg'))
    .sort()
    .map((f) => path.join(data, 'jpg', f));
  const [deletedA, deletedB, movedFrom] = [files[1], files[4], files[6]];
  const deletedCopies = await tempDir('deleted');
  for (const file of [deletedA, deletedB]) fs.renameSync(file, path.join(deletedCopies, path.basename(file))); // kept outside to query with
  const movedTo = path.join(data, 'renamed', 'moved.jpg');
  fs.mkdirSync(path.dirname(movedTo));
  fs.renameSync(movedFrom, movedTo);

  const second = await index(data, workspace);
  t.is(second.indexed, 0);
  t.is(second.unchanged, 6);
  t.deepEqual(second.moved, [{ from: movedFrom, to: movedTo }]);
  t.deepEqual(
    second.removed.map((r) => r.file),
    [deletedA, deletedB],
  );
  t.true(second.removed.every((r) => /^[0-9a-f]{64}$/.test(r.sha256)));
  t.deepEqual(second.total.docs, 6);

  const searcher = await openIndex(workspace, { model: modelDir });
  try {
    const paths = searcher.workspace.docs().map((d) => d.path);
    t.deepEqual(
      paths,
      files.filter((f) => f !== deletedA && f !== deletedB).map((f) => (f === movedFrom ? movedTo : f)),
    );
    for (const gone of [deletedA, deletedB]) {
      const { results } = await searcher.search(path.join(deletedCopies, path.basename(gone)), { top: 10 });
      t.is(results.length, 6, 'every remaining doc is ranked');
      t.false(
        results.some((hit) => hit.path === gone),
        `${path.basename(gone)} is never a result again`,
      );
      t.true(
        results.every((hit) => searcher.workspace.doc(hit.docId)?.path === hit.path),
        'ids and paths agree after the compaction',
      );
    }
    const { results } = await searcher.search(movedTo, { top: 1 });
    t.is(results[0].path, movedTo);
    t.true(results[0].score > 0.99, `the moved image finds itself (${results[0].score})`);
  } finally {
    await searcher.close();
  }
  t.like(Workspace.verify(workspace), { ok: true, docs: 6 });

  // --keep-missing keeps a deleted file's doc; a later plain run drops it.
  fs.rmSync(files[0]);
  const kept = await index(data, workspace, { keepMissing: true });
  t.deepEqual([kept.removed, kept.total.docs], [[], 6]);
  const dropped = await index(data, workspace);
  t.deepEqual(
    dropped.removed.map((r) => r.file),
    [files[0]],
  );
});

test("a second folder indexed into the same workspace does not remove the first one's docs; symbolic links are followed, broken ones skipped", async (t) => {
  const first = await makeDataDir(subset(2, 2));
  const second = await makeDataDir(subset(2, 2, 10));
  const workspace = path.join(await tempDir('changes'), 'ws');
  await index(first, workspace);
  const linked = await tempDir('linked');
  fs.symlinkSync(path.join(second, 'jpg'), path.join(linked, 'photos'));
  fs.symlinkSync(path.join(second, 'missing.jpg'), path.join(linked, 'broken.jpg'));
  const run = await index(linked, workspace);
  t.is(run.files, 4);
  t.is(run.indexed, 4);
  t.deepEqual(run.removed, []);
  t.deepEqual(run.skipped, [{ file: path.join(linked, 'broken.jpg'), reason: `broken symbolic link: its target ${path.join(second, 'missing.jpg')} does not exist` }]);
  t.is(run.total.docs, 8);
  const again = await index(first, workspace);
  t.deepEqual([again.removed, again.total.docs], [[], 8]);
});

test('index refuses to append to a damaged index and says how to repair it; after verify --repair it encodes the dropped image again', async (t) => {
  const data = await makeDataDir(subset(1, 3));
  const workspace = path.join(await tempDir('changes'), 'ws');
  const args = ['index', '--data', data, '--model', modelDir, '--workspace', workspace, '--replicas', '1'];
  t.is((await runCli(args)).code, 0);
  const fd = fs.openSync(path.join(workspace, 'chunks.npy'), 'r+');
  fs.writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, NPY_DATA_OFFSET + 100); // NaNs in doc 0's first row
  fs.closeSync(fd);
  const refused = await runCli(args);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /is damaged, nothing was added:\n {2}- doc 0 \(.*\): rows differ from their checksum; row 0: NaN or infinite values\n/);
  t.regex(refused.stderr, /flower-native verify --repair --workspace /);
  t.is((await runCli(['verify', '--repair', '--workspace', workspace])).code, 0);
  const rerun = await runCli(args);
  t.is(rerun.code, 0, rerun.stderr);
  t.regex(rerun.stdout, /^indexed 1 images/m);
  t.like(Workspace.verify(workspace), { ok: true, docs: 3 });
});
