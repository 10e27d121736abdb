/**
 * ranking.bin: what the `expanded` ranking learned from an index (whitening, doc vectors, neighbour
 * lists, expanded vectors, the instance matrix, the docs' thumbnails), beside the index it was learned from. One file,
 * replaced atomically (temp file, fsync, rename, fsync of the folder), so a kill leaves the old
 * state or the new one. It records what it was learned from (model sha256, committed rows, every
 * doc's sha256): a state that does not match the index it sits beside is stale, and the reader
 * learns in memory instead. The math lives in src/search; this file only stores and checks.
 *
 * Layout: the 8-byte magic, a little-endian uint32 header length, the header (JSON, space-padded
 * so the arrays start on a 64-byte boundary), then the arrays the header lists, back to back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';

export const RANKING_STATE_FILE = 'ranking.bin';
/** Bumped whenever the layout or the recipe changes: an older state is recomputed, never misread. */
export const RANKING_STATE_VERSION = 3;
const MAGIC = Buffer.from('FNRANK\x00\x01', 'latin1');
const ALIGN = 64;

export interface RankingStateHeader {
  readonly version: number;
  readonly modelSha256: string;
  /** Raw embedding size. */
  readonly dim: number;
  /** The index's committed chunk rows and each doc's sha256 (by id) when this state was written. */
  readonly rows: number;
  readonly docShas: readonly string[];
  /** Docs the whitening was fitted on (it is kept while the index changes by less than a fraction of this). */
  readonly fittedDocs: number;
  /** Class-space and instance-space whitened sizes, neighbours kept per doc (one spare beyond the expansion's). */
  readonly dims: number;
  readonly instDims: number;
  readonly neighbours: number;
  /** The recipe's parameters, as learned with. */
  readonly params: Readonly<Record<string, number>>;
}

/** The arrays, row-major. */
export interface RankingArrays {
  /** dim: the mean of the indexed chunk rows. */
  readonly mean: Float32Array;
  /** dims × dim: the class-space whitening directions, each scaled by λ^-power. */
  readonly projection: Float32Array;
  /** instDims × dim: the same for the instance space. */
  readonly instProjection: Float32Array;
  /** docs × dims: each doc's whitened mean chunk vector, unit length. */
  readonly docVectors: Float32Array;
  /** docs × dims: each doc's vector expanded with its neighbours (database-side augmentation), unit length. */
  readonly expanded: Float32Array;
  /** docs × neighbours: the nearest other docs by docVectors cosine, best first (-1 past the end). */
  readonly neighbourIds: Int32Array;
  readonly neighbourScores: Float32Array;
  /** rows × instDims: every chunk row in the instance space, unit length. */
  readonly instance: Float32Array;
  /** docs: each doc's chunk count, so the rows of a doc that is kept can be found again after others are removed. */
  readonly docChunkCounts: Int32Array;
  /** docs × 256: each doc's same-photo thumbnail (search/thumbnail.ts); a zero row when its file could not be read. */
  readonly thumbnails: Float32Array;
  /** docs × 1024: the same picture's 32 × 32 luminance means (search/thumbnail.ts fineThumbnail), which the crop check slides the query's thumbnail over. */
  readonly fineThumbnails: Float32Array;
}

export type RankingState = RankingStateHeader & RankingArrays;

const ARRAYS: readonly (keyof RankingArrays)[] = [
  'mean',
  'projection',
  'instProjection',
  'docVectors',
  'expanded',
  'neighbourIds',
  'neighbourScores',
  'instance',
  'docChunkCounts',
  'thumbnails',
  'fineThumbnails',
];

/** Write the state into `dir` atomically. */
export function writeRankingState(dir: string, state: RankingState): void {
  const header: RankingStateHeader & { arrays: { name: string; dtype: 'f4' | 'i4'; length: number }[] } = {
    version: state.version,
    modelSha256: state.modelSha256,
    dim: state.dim,
    rows: state.rows,
    docShas: state.docShas,
    fittedDocs: state.fittedDocs,
    dims: state.dims,
    instDims: state.instDims,
    neighbours: state.neighbours,
    params: state.params,
    arrays: ARRAYS.map((name) => ({ name, dtype: state[name] instanceof Int32Array ? 'i4' : 'f4', length: state[name].length })),
  };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (ALIGN - ((MAGIC.length + 4 + json.length) % ALIGN)) % ALIGN;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  const parts: Uint8Array[] = [MAGIC, length, json, ...ARRAYS.map((name) => new Uint8Array(state[name].buffer, state[name].byteOffset, state[name].byteLength))];
  writeFileAtomic(path.join(dir, RANKING_STATE_FILE), Buffer.concat(parts));
}

/** The state stored in `dir`, or why there is none to use (missing, another version, damaged). */
export function readRankingState(dir: string): { state: RankingState } | { unusable: string } {
  const file = path.join(dir, RANKING_STATE_FILE);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return { unusable: `no ${RANKING_STATE_FILE}` };
  }
  try {
    if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return { unusable: `${file} is not a ranking state` };
    const headerLength = bytes.readUInt32LE(MAGIC.length);
    const header = JSON.parse(bytes.toString('utf8', MAGIC.length + 4, MAGIC.length + 4 + headerLength)) as RankingStateHeader & {
      arrays: { name: keyof RankingArrays; dtype: 'f4' | 'i4'; length: number }[];
    };
    if (header.version !== RANKING_STATE_VERSION) return { unusable: `${file} is version ${header.version}, this flower-native uses ${RANKING_STATE_VERSION}` };
    // One aligned copy of the data: views into it need 4-byte alignment, which a Buffer need not have.
    const data = new Uint8Array(bytes.length - (MAGIC.length + 4 + headerLength));
    data.set(bytes.subarray(MAGIC.length + 4 + headerLength));
    let offset = 0;
    const arrays = {} as Record<keyof RankingArrays, Float32Array | Int32Array>;
    for (const { name, dtype, length } of header.arrays) {
      if (offset + length * 4 > data.length) return { unusable: `${file} is truncated` };
      arrays[name] = dtype === 'i4' ? new Int32Array(data.buffer, offset, length) : new Float32Array(data.buffer, offset, length);
      offset += length * 4;
    }
    if (ARRAYS.some((name) => !arrays[name])) return { unusable: `${file} lacks arrays` };
    const { arrays: _layout, ...rest } = header;
    return { state: { ...rest, ...(arrays as unknown as RankingArrays) } };
  } catch (err) {
    return { unusable: `${file} is damaged (${(err as Error).message})` };
  }
}
