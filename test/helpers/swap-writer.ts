/**
 * Child process for the swap crash test: rebuilds the workspace with docs 100..100+count-1 under
 * another model sha and closes it, SIGKILLing itself right after the rebuild swap's step `crashAt`
 * (one of swapStepNames(), or 'staged': just before the rebuild is marked ready).
 * Usage: node swap-writer.js <dir> <count> <dim> <crashAt>
 */
import { Workspace } from '../../src/store/index.js';
import { swapHooks } from '../../src/store/swap.js';
import { makeDoc, testChunking, testModel } from './store-docs.js';

const [dir, countArg, dimArg, crashAt] = process.argv.slice(2);
const dim = Number(dimArg);
swapHooks.afterStep = (step) => {
  if (step === crashAt) process.kill(process.pid, 'SIGKILL');
};
const ws = Workspace.openForWrite(dir, { model: testModel(dim, 'b'.repeat(64)), chunking: testChunking, rebuild: true, sources: { model: '/models/new', data: '/data/new' } });
ws.addDocs(Array.from({ length: Number(countArg) }, (_, i) => makeDoc(100 + i, dim)));
ws.close();
process.stdout.write('closed\n');
