/** File names with terminal control sequences are shown escaped, never sent to the terminal raw. */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { printable } from '../src/cli/terminal.js';
import { flowerImage } from '../bench/fixtures.js';
import { modelDir, runCli, tempDir } from './e2e-helpers.js';

test('printable escapes control characters but newline and tab', (t) => {
  t.is(printable('a\x1b[31mred\x07\r\n\tb\x7f\x9b'), 'a\\x1b[31mred\\x07\\x0d\n\tb\\x7f\\x9b');
  t.is(printable('tulipe été 🌷'), 'tulipe été 🌷');
});

test('index and query print names with escape sequences escaped', async (t) => {
  const data = await tempDir('ansi');
  const red = path.join(data, '\x1b[31mred\x1b[0m.jpg');
  await fs.copyFile(flowerImage(1), red);
  await fs.writeFile(path.join(data, 'retitle\x1b]0;pwned\x07.jpg'), 'not pixels');
  const workspace = path.join(data, 'ws');
  const indexed = await runCli(['index', '--data', data, '--model', modelDir, '--workspace', workspace]);
  t.is(indexed.code, 0, indexed.stderr);
  t.false(indexed.stdout.includes('\x1b'), 'raw ESC in the index summary');
  t.true(indexed.stdout.includes('retitle\\x1b]0;pwned\\x07.jpg: not an image'));
  const queried = await runCli(['query', red, path.join(data, 'missing\x1b[2J.jpg'), '--workspace', workspace, '--top', '1']);
  t.false(queried.stdout.includes('\x1b') || queried.stderr.includes('\x1b'), 'raw ESC in query output');
  t.true(queried.stdout.includes('\\x1b[31mred\\x1b[0m.jpg'));
  t.true(queried.stderr.includes('missing\\x1b[2J.jpg'));
});
