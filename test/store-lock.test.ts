/**
 * The single-writer lock is an OS lock the kernel drops when its holder dies: no pid in a file can
 * keep a writer out (a reused pid, PID 1 in a container, this very process), a killed writer frees
 * it at once, and two live writers still exclude each other.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { IndexLockedError } from '../src/errors.js';
import { Workspace } from '../src/store/index.js';
import { lockHolder, tryLock, withLock } from '../src/util/lock.js';
import { makeDoc, testChunking, testModel } from './helpers/store-docs.js';
import { holdLock, holdWorkspace, killAndWait } from './helpers/store-lock.js';

const DIM = 8;
const model = testModel(DIM);
const lockHolderScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'lock-holder.js');

function indexedWorkspace(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flower-lock-'));
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  ws.addDocs([makeDoc(0, DIM)]);
  ws.close();
  return dir;
}

/** Opens `dir` for writing and adds a doc, proving the writer got in. */
function writeOneDoc(dir: string, doc: number): number {
  const ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
  try {
    ws.addDocs([makeDoc(doc, DIM)]);
    return ws.docCount;
  } finally {
    ws.close();
  }
}

test('a .lock holding the pid of a live unrelated process (a reused pid, PID 1, this process) does not block a writer', (t) => {
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const dir = indexedWorkspace();
    const lock = path.join(dir, '.lock');
    let doc = 1;
    for (const pid of [sleeper.pid!, 1, process.pid]) {
      // The pid file an earlier version left behind when its writer was killed.
      fs.writeFileSync(lock, String(pid));
      t.is(writeOneDoc(dir, doc), doc + 1, `not blocked by a .lock naming live process ${pid}`);
      doc++;
      // The lock database a killed writer leaves, its recorded pid now someone else's.
      const db = new Database(lock);
      db.pragma(`user_version = ${pid}`);
      db.close();
      t.is(lockHolder(lock), pid);
      t.is(writeOneDoc(dir, doc), doc + 1, `not blocked by a lock database naming live process ${pid}`);
      doc++;
    }
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('two live writers exclude each other; the refusal names the holder', async (t) => {
  const dir = indexedWorkspace();
  const other = await holdWorkspace(dir, DIM);
  try {
    const err = t.throws(() => Workspace.openForWrite(dir, { model, chunking: testChunking }), { instanceOf: IndexLockedError });
    t.is(err.code, 'index_locked');
    t.is(err.message, `workspace ${dir} is being written by process ${other.pid}: wait for it to finish`);
    // A reader is not held up by the writer.
    const reader = Workspace.openForRead(dir);
    t.is(reader.docCount, 1);
    reader.close();
  } finally {
    await killAndWait(other);
  }
  t.is(writeOneDoc(dir, 5), 2);
});

test('a writer SIGKILLed while holding the workspace frees it at once, before its pid is even reaped', (t) => {
  const dir = indexedWorkspace();
  return holdWorkspace(dir, DIM).then((child) => {
    child.kill('SIGKILL');
    // Wait without yielding to the event loop: Node cannot reap the child meanwhile, so its pid stays
    // taken (a zombie looks alive to kill(pid, 0)), as a reused pid would.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + 10_000;
    let ws: Workspace | undefined;
    while (!ws) {
      try {
        ws = Workspace.openForWrite(dir, { model, chunking: testChunking });
      } catch (err) {
        if (!(err instanceof IndexLockedError) || Date.now() > deadline) throw err;
        Atomics.wait(pause, 0, 0, 20);
      }
    }
    t.is(child.exitCode, null, 'the killed writer was not reaped yet');
    t.is(ws.docCount, 1);
    ws.close();
  });
});

test('a lock held in this process stays held when this process asks about it', (t) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'flower-lock-')), 'x.lock');
  const release = tryLock(file)!;
  t.truthy(release);
  // Opening and closing the file here would drop the POSIX lock: the module must not.
  t.is(tryLock(file), undefined);
  t.is(lockHolder(file), process.pid);
  t.is(spawnSync(process.execPath, [lockHolderScript, file], { encoding: 'utf8' }).stdout, 'busy\n');
  release();
  release(); // idempotent
  const child = spawnSync(process.execPath, [lockHolderScript, file], { encoding: 'utf8', timeout: 2000 });
  t.is(child.stdout, 'held\n'); // killed by the timeout, holding
});

test('withLock waits for a holder in another process and goes ahead when it dies', async (t) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'flower-lock-')), 'x.lock');
  const holder = await holdLock(file);
  const waits: (number | undefined)[] = [];
  let ran = false;
  const done = withLock(
    file,
    () => {
      ran = true;
      return Promise.resolve();
    },
    (pid) => waits.push(pid),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.false(ran, 'waits while the holder lives');
  t.deepEqual(waits, [holder.pid]);
  await killAndWait(holder);
  await done;
  t.true(ran);
});
