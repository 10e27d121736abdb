/** Run-time failures exit with the status the CLI's one table gives their error code. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { FlowError, IndexLockedError, InputError, NoNetworkError } from '../src/errors.js';
import { acquireWriteLock } from '../src/store/lock.js';
import { modelDir, runCli } from './e2e-helpers.js';

test('error codes map to exit statuses through one table', (t) => {
  t.is(exitCodeFor(new FlowError('f.yml', 3, 'bad')), 1);
  t.is(exitCodeFor(new IndexLockedError('ws', 'busy')), 75);
  t.is(exitCodeFor(new NoNetworkError('http://x/', 'ECONNREFUSED', 'hint')), 69);
  t.is(exitCodeFor(new InputError('a.jpg', 'empty file')), 1);
  t.is(exitCodeFor(new Error('anything else')), 1);
});

test('a workspace another process is writing exits 75 (EX_TEMPFAIL: run again later) naming that process', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fn-exit-'));
  const workspace = path.join(dir, 'ws');
  fs.mkdirSync(workspace);
  fs.mkdirSync(path.join(dir, 'data'));
  const release = acquireWriteLock(workspace);
  try {
    const result = await runCli(['index', '--data', path.join(dir, 'data'), '--workspace', workspace, '--model', modelDir]);
    t.is(result.code, 75, result.stderr);
    t.regex(result.stderr, new RegExp(`being written by process ${process.pid}`));
  } finally {
    release();
  }
});
