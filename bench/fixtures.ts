/**
 * Where tests and benchmarks find the read-only fixtures: ../shared beside the checkout, or $FLOWER_SHARED_DIR.
 * Lives in bench/ because tests may import bench/ but bench/ never imports test/.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Project root, found from this file's place in dist/bench/ or bench/. */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), fileURLToPath(import.meta.url).includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
export const sharedDir = path.resolve(process.env.FLOWER_SHARED_DIR ?? path.join(projectRoot, '..', 'shared'));
export const flowersDir = path.join(sharedDir, 'datasets', '17flowers');
export const flowersJpgDir = path.join(flowersDir, 'jpg');
export const modelDir = path.join(sharedDir, 'models', 'mobilenet_v2_1.0_224');

/** Path of fixture image n (1-based, 1..1360); class = floor((n - 1) / 80). */
export function flowerImage(n: number): string {
  return path.join(flowersJpgDir, `image_${String(n).padStart(4, '0')}.jpg`);
}
