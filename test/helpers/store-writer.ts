/**
 * Child process for the store crash tests: adds docs 0..total-1 in batches (skipping those already
 * indexed), printing "batch <n>" after each commit, then "done". With --hold it keeps the workspace
 * open after the last batch (printing "holding") until it is killed.
 * Usage: node store-writer.js <dir> <total> <batch> <dim> [--rebuild] [--sha <hex>] [--hold]
 */
import { Workspace } from '../../src/store/index.js';
import { docSha, makeDoc, testChunking, testModel } from './store-docs.js';

const [dir, totalArg, batchArg, dimArg, ...flags] = process.argv.slice(2);
const total = Number(totalArg);
const batch = Number(batchArg);
const dim = Number(dimArg);
const shaIndex = flags.indexOf('--sha');
const model = testModel(dim, shaIndex >= 0 ? flags[shaIndex + 1] : undefined);

const ws = Workspace.openForWrite(dir, { model, chunking: testChunking, rebuild: flags.includes('--rebuild') });
let batches = 0;
for (let start = 0; start < total; start += batch) {
  const docs = [];
  for (let i = start; i < Math.min(start + batch, total); i++) if (!ws.hasDoc(docSha(i))) docs.push(makeDoc(i, dim));
  if (docs.length === 0) continue;
  ws.addDocs(docs);
  process.stdout.write(`batch ${++batches}\n`);
}
if (flags.includes('--hold')) {
  process.stdout.write('holding\n');
  setInterval(() => undefined, 1000);
} else {
  ws.close();
  process.stdout.write('done\n');
}
