/**
 * Child process for the shrink test: opens a workspace for reading and searches it (the kernels'
 * top-k over the mapped matrix) once per line read on stdin, printing "ok <best row>" or
 * "error <code> <message>"; prints "alive" when stdin closes. Dying of SIGBUS shows as its signal.
 * Usage: node shrink-reader.js <workspace>
 */
import readline from 'node:readline';
import { FlowerError } from '../../src/errors.js';
import { kernels } from '../../src/kernels/index.js';
import { Workspace } from '../../src/store/index.js';

const ws = Workspace.openForRead(process.argv[2]);
const query = ws.matrix().slice(0, ws.dim);
const search = () => {
  try {
    const { ids } = kernels.cosineTopK({ matrix: ws.matrix(), rows: ws.chunkCount, dim: ws.dim, queries: query, k: ws.chunkCount });
    return `ok ${ids[0]}`;
  } catch (err) {
    return err instanceof FlowerError ? `error ${err.code} ${err.message}` : `error ? ${String(err)}`;
  }
};
process.stdout.write(`${search()}\n`);
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', () => process.stdout.write(`${search()}\n`));
lines.on('close', () => process.stdout.write('alive\n'));
