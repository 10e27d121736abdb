/** Child processes that hold a lock or a workspace open for writing, for the lock tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const helpers = path.dirname(fileURLToPath(import.meta.url));

/** Starts `node <helper> ...args` and resolves once it prints `ready` (rejecting if it exits first). */
function startUntil(helper: string, args: string[], ready: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(helpers, helper), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      output += text;
      if (output.includes(`${ready}\n`)) resolve(child);
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.on('error', reject);
    child.on('exit', (code, signal) => reject(new Error(`${helper} exited (${code ?? signal}) before it was ${ready}: ${output}`)));
  });
}

/** A process holding lock `file` until killed. */
export const holdLock = (file: string) => startUntil('lock-holder.js', [file], 'held');

/** A process holding workspace `dir` open for writing (one doc added) until killed. */
export const holdWorkspace = (dir: string, dim: number) => startUntil('store-writer.js', [dir, '1', '1', String(dim), '--hold'], 'holding');

/** Kills `child` with SIGKILL and waits until it is gone (and reaped). */
export function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
