/** Data folders: labels.csv parsing (a CSV parser, so quoted fields survive) and the image walk. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findImages, listImages, readLabelsCsv } from '../src/dataset/index.js';

function dataDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-dataset-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

test('labels.csv: quoted fields keep their commas and quotes; BOM, CRLF, blank lines and column order do not matter', (t) => {
  const dir = dataDir({
    'labels.csv': '\ufeffclass_id,class_name,file\r\n0,"daisy, white",jpg/a.jpg\r\n\r\n1,"the ""tulip""",jpg/b.jpg\r\n2, sunflower ,"jpg/with, comma.jpg"\r\n',
  });
  t.deepEqual(
    readLabelsCsv(path.join(dir, 'labels.csv')),
    new Map([
      [path.join(dir, 'jpg', 'a.jpg'), 'daisy, white'],
      [path.join(dir, 'jpg', 'b.jpg'), 'the "tulip"'],
      [path.join(dir, 'jpg', 'with, comma.jpg'), 'sunflower'],
    ]),
  );
});

test('labels.csv: problems name the file (and the line)', (t) => {
  const noHeader = dataDir({ 'labels.csv': 'name,label\na.jpg,daisy\n' });
  t.throws(() => readLabelsCsv(path.join(noHeader, 'labels.csv')), { message: `${path.join(noHeader, 'labels.csv')}: expected a header with "file" and "class_name" columns, got "name,label"` });
  const short = dataDir({ 'labels.csv': 'file,class_id,class_name\njpg/a.jpg,0,daisy\n\njpg/b.jpg,1\n' });
  t.throws(() => readLabelsCsv(path.join(short, 'labels.csv')), { message: `${path.join(short, 'labels.csv')}:4: missing file or class_name` });
  const unclosed = dataDir({ 'labels.csv': 'file,class_id,class_name\njpg/a.jpg,0,"daisy\n' });
  t.throws(() => readLabelsCsv(path.join(unclosed, 'labels.csv')), { message: /labels\.csv: not a readable CSV file \(Quote Not Closed/ });
  t.throws(() => readLabelsCsv(path.join(unclosed, 'missing.csv')), { message: /missing\.csv: cannot read labels \(ENOENT\)/ });
});

test('findImages: image files by extension (any case), recursively, sorted, without the workspace inside the folder', async (t) => {
  const dir = dataDir({ 'b/z.JPG': '', 'a.png': '', 'notes.txt': '', 'b/c/y.webp': '', 'ws/thumb.jpg': '', 'labels.csv': '' });
  t.deepEqual(await findImages(dir, path.join(dir, 'ws')), [path.join(dir, 'a.png'), path.join(dir, 'b', 'c', 'y.webp'), path.join(dir, 'b', 'z.JPG')]);
  t.is((await findImages(dir)).length, 4);
  await t.throwsAsync(findImages(path.join(dir, 'nope')), { message: `${path.join(dir, 'nope')}: cannot read the data folder (ENOENT)` });
});

test('listImages follows symbolic links to images and folders, lists broken links and loops as skipped with the reason', async (t) => {
  const dir = dataDir({ 'real/a.jpg': 'a', 'elsewhere/b.png': 'b', 'elsewhere/deep/c.webp': 'c', 'notes.txt': '' });
  const elsewhere = path.join(dir, 'elsewhere');
  const data = path.join(dir, 'data');
  fs.mkdirSync(path.join(data, 'sub'), { recursive: true });
  fs.symlinkSync(path.join(dir, 'real', 'a.jpg'), path.join(data, 'linked.jpg'));
  fs.symlinkSync(elsewhere, path.join(data, 'folder'));
  fs.symlinkSync(path.join(dir, 'gone.jpg'), path.join(data, 'broken.jpg'));
  fs.symlinkSync(path.join(dir, 'gone'), path.join(data, 'broken-folder')); // not named like an image: nothing to say
  fs.symlinkSync(data, path.join(data, 'sub', 'loop'));
  fs.symlinkSync(path.join(data, 'self.jpg'), path.join(data, 'self.jpg'));
  fs.symlinkSync(path.join(dir, 'notes.txt'), path.join(data, 'notes-link.jpg.txt'));

  const listing = await listImages(data);
  t.deepEqual(listing.files, [path.join(data, 'folder', 'b.png'), path.join(data, 'folder', 'deep', 'c.webp'), path.join(data, 'linked.jpg')]);
  t.deepEqual(listing.skipped, [
    { file: path.join(data, 'broken.jpg'), reason: `broken symbolic link: its target ${path.join(dir, 'gone.jpg')} does not exist` },
    { file: path.join(data, 'self.jpg'), reason: 'symbolic link loop (ELOOP)' },
    { file: path.join(data, 'sub', 'loop'), reason: `symbolic link loop: ${data} is already being walked` },
  ]);
  t.deepEqual(await findImages(data), listing.files);
});
