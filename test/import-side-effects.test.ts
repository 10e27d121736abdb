/** Importing the library must leave the host application's process-wide state alone. */
import test from 'ava';
import sharp from 'sharp';

test("importing flower-native leaves the host's sharp settings alone; a flow changes them only while it runs", async (t) => {
  sharp.concurrency(3);
  sharp.cache({ items: 7, memory: 11, files: 5 });
  const { holdDecodingSettings } = await import('../src/image/index.js');
  await import('../src/index.js');
  t.is(sharp.concurrency(), 3, 'import changed sharp.concurrency');
  t.is(sharp.cache().items.max, 7, 'import changed the sharp cache');

  const release = holdDecodingSettings();
  const second = holdDecodingSettings();
  t.is(sharp.concurrency(), 1);
  t.is(sharp.cache().items.max, 0);
  release();
  t.is(sharp.concurrency(), 1, 'released while another flow still decodes');
  second();
  second(); // a second release of the same hold is harmless
  t.is(sharp.concurrency(), 3);
  t.deepEqual([sharp.cache().items.max, sharp.cache().memory.max, sharp.cache().files.max], [7, 11, 5]);
});
