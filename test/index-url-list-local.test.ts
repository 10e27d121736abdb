/**
 * `index --data urls.txt --workspace ws`: a URL list is read only into a Postgres store, so a local
 * workspace refuses it with one line naming the file and the way that works (before, the line was
 * only "cannot read the data folder (ENOTDIR)").
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { modelDir, runCli, tempDir } from './e2e-helpers.js';

test('a URL list given to a local workspace is one clear error naming the file and --store postgres://', async (t) => {
  const dir = await tempDir('urls-local');
  const list = path.join(dir, 'urls.txt');
  await fs.writeFile(list, 'http://127.0.0.1:9/img/image_0001.jpg\n');
  const workspace = path.join(dir, 'ws');
  const result = await runCli(['index', '--data', list, '--workspace', workspace, '--model', modelDir]);
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, new RegExp(`${list.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*not a folder`));
  t.regex(result.stderr, /--store postgres:\/\//);
  t.notRegex(result.stderr, /ENOTDIR|\n\s+at /, 'no errno code and no stack trace');
  t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
});
