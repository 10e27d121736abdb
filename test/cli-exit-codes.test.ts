/** Run-time failures exit with the status the CLI's one table gives their error code. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exitCodeFor } from '../src/cli/exit-codes.js';
import { FlowError, IndexLockedError, InputError, NoNetworkError } from '../src/errors.js';
import { runCli } from './e2e-helpers.js';

test('error codes map to exit statuses through one table', (t) => {
  t.is(exitCodeFor(new FlowError('f.yml', 3, 'bad')), 78);
  t.is(exitCodeFor(new IndexLockedError('ws', 'busy')), 75);
  t.is(exitCodeFor(new NoNetworkError('http://x/', 'ECONNREFUSED', 'hint')), 69);
  t.is(exitCodeFor(new InputError('a.jpg', 'empty file')), 1);
  t.is(exitCodeFor(new Error('anything else')), 1);
});

test('a broken flow file exits 78 (EX_CONFIG) naming the file and line', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fn-exit-'));
  const flow = path.join(dir, 'bad.yml');
  fs.writeFileSync(flow, 'pods:\n  loader:\n    uses: nosuch\n');
  fs.mkdirSync(path.join(dir, 'data'));
  const result = await runCli(['index', '--data', path.join(dir, 'data'), '--workspace', path.join(dir, 'ws'), '--model', 'unused', '--flow', flow]);
  t.is(result.code, 78, result.stderr);
  t.regex(result.stderr, new RegExp(`${flow.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: `));
});
