/** Shared by the flows/CLI/e2e tests: small data folders cut from the fixture, bad files, the CLI as a child process. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { flowerImage, flowersDir, modelDir, projectRoot } from '../bench/fixtures.js';

export { modelDir };
export const cliPath = path.join(projectRoot, 'dist', 'src', 'cli', 'main.js');
export const CLASS_NAMES = ['daffodil', 'snowdrop', 'lily_valley', 'bluebell', 'crocus'] as const;

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `flower-${prefix}-`));
}

/** Fixture image numbers: `perClass` images of each of the first `classes` classes. */
export function subset(classes: number, perClass: number, offset = 0): number[] {
  return Array.from({ length: classes * perClass }, (_, i) => Math.floor(i / perClass) * 80 + (i % perClass) + 1 + offset);
}

/** A data folder with copies of fixture images under jpg/ and a labels.csv in the fixture's format. */
export async function makeDataDir(images: number[], dir?: string): Promise<string> {
  const data = dir ?? (await tempDir('data'));
  await fs.mkdir(path.join(data, 'jpg'), { recursive: true });
  const labels = new Map(
    (await fs.readFile(path.join(flowersDir, 'labels.csv'), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => [line.split(',')[0], line] as const),
  );
  const rows = ['file,class_id,class_name'];
  for (const n of images) {
    const file = `jpg/${path.basename(flowerImage(n))}`;
    await fs.copyFile(flowerImage(n), path.join(data, file));
    rows.push(labels.get(file)!);
  }
  await fs.writeFile(path.join(data, 'labels.csv'), `${rows.join('\n')}\n`);
  return data;
}

/** One file per kind of bad input, each with the reason the index summary should give. */
export async function writeBadFiles(dir: string): Promise<{ file: string; reason: RegExp }[]> {
  const solid = (w: number, h: number) => sharp({ create: { width: w, height: h, channels: 3, background: '#808080' } });
  const bomb = Buffer.from(await solid(16, 16).png().toBuffer());
  bomb.writeUInt32BE(30000, 16);
  bomb.writeUInt32BE(30000, 20);
  bomb.writeUInt32BE(zlib.crc32(bomb.subarray(12, 29)), 29);
  const jpeg = await fs.readFile(flowerImage(700));
  const files: [string, Uint8Array | string, RegExp][] = [
    ['bad/empty.jpg', new Uint8Array(0), /empty file/],
    ['bad/notes.png', 'these are not pixels\n', /not an image/],
    ['bad/truncated.jpg', jpeg.subarray(0, 600), /truncated or corrupt JPEG/],
    ['bad/tiny.png', await solid(8, 8).png().toBuffer(), /image too small/],
    ['bad/bomb.png', bomb, /image too large: 30000x30000/],
    // 9 KB, under every size limit, but would resize to 256x320000 px and ~2,857 chunks.
    ['bad/sliver.png', await solid(16, 20000).png().toBuffer(), /extreme aspect ratio: 16x20000 px is 1250:1, limit 20:1/],
  ];
  await fs.mkdir(path.join(dir, 'bad'), { recursive: true });
  for (const [name, bytes] of files) await fs.writeFile(path.join(dir, name), bytes);
  return files.map(([name, , reason]) => ({ file: path.join(dir, name), reason }));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** Start the built CLI without waiting for it. */
export function startCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}
