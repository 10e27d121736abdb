/**
 * The local workspace as a `ChunkIndex`: nearest-neighbour search is the kernels' exact cosine
 * top-k over the memory-mapped chunk matrix (one pass for all query chunks). The expanded ranking's
 * state is the workspace's ranking.bin when it was learned from this very index, else it is learned
 * in memory on first use (nothing is written: readers may be read-only), and `onNotice` is told once.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { decodeImage } from '../image/index.js';
import { kernels, type Kernels } from '../kernels/index.js';
import { NoIndexError } from '../errors.js';
import { Workspace } from '../store/index.js';
import { readRankingState, writeRankingState, type RankingState } from '../store/ranking-state.js';
import { learnRankingState, stateMatches, type LearnOutcome, type StateSource } from './expansion.js';
import { FINE_LENGTH, photoThumbnails, THUMBNAIL_LENGTH, type PhotoThumbnails } from './thumbnail.js';
import type { ChunkCandidates, MatrixIndex, WholeHits } from './types.js';

export interface LocalChunkIndexOptions {
  /** Told once when the stored ranking state cannot be used and is learned in memory instead. */
  onNotice?: (message: string) => void;
}

export class LocalChunkIndex implements MatrixIndex {
  private whole?: { matrix: Float32Array; docs: Int32Array };
  /** 0, 1, 2, …: the compact numbering of candidates is the store's own. */
  private identity?: Int32Array;
  private state?: RankingState;

  constructor(
    readonly workspace: Workspace,
    private readonly impl: Kernels = kernels,
    private readonly opts: LocalChunkIndexOptions = {},
  ) {}

  rankingState(): RankingState {
    if (!this.state) {
      const stored = readRankingState(this.workspace.dir);
      const previous = 'state' in stored ? stored.state : undefined;
      const { state, outcome, ms } = learnRankingState(stateSource(this.workspace), this.impl, previous);
      if (outcome !== 'current') {
        const why = previous
          ? `${this.workspace.dir}'s ranking state was learned from another version of the index`
          : `${this.workspace.dir} has no usable ranking state (${'unusable' in stored ? stored.unusable : ''})`;
        this.opts.onNotice?.(`${why}: ${outcome === 'updated' ? 'updated' : 'learned'} in memory in ${(ms / 1000).toFixed(1)} s; the next \`flower-native index\` run stores it`);
      }
      this.state = state;
    }
    return this.state;
  }

  get location(): string {
    return this.workspace.dir;
  }
  get dim(): number {
    return this.workspace.dim;
  }
  get docCount(): number {
    return this.workspace.docCount;
  }
  get chunkCount(): number {
    return this.workspace.chunkCount;
  }
  chunkDoc(): Int32Array {
    return this.workspace.chunkDoc();
  }
  docChunkCounts(): Int32Array {
    return this.workspace.docChunkCounts();
  }
  wholeChunkRows(): Int32Array {
    return this.workspace.wholeChunkRows();
  }
  matrix(): Float32Array {
    return this.workspace.matrix();
  }

  docChunkCount(docId: number): number {
    return this.docChunkCounts()[docId] ?? 0;
  }

  async chunkCandidates(queries: Float32Array, k: number): Promise<ChunkCandidates> {
    const topk = await this.impl.cosineTopKAsync({ matrix: this.workspace.matrix(), rows: this.chunkCount, dim: this.dim, queries, k: Math.min(k, this.chunkCount) });
    this.identity ??= Int32Array.from({ length: Math.max(this.docCount, this.chunkCount) }, (_, i) => i);
    return { topk, chunkDoc: this.chunkDoc(), docChunkCounts: this.docChunkCounts(), docIds: this.identity, chunkRows: this.identity };
  }

  async wholeTopK(query: Float32Array, k: number): Promise<WholeHits> {
    const { matrix, docs } = this.wholeRows();
    const result = await this.impl.cosineTopKAsync({ matrix, rows: docs.length, dim: this.dim, queries: query, k: Math.min(k, docs.length) });
    const docIds = result.ids.map((slot) => (slot < 0 ? -1 : docs[slot]));
    const rows = this.wholeChunkRows();
    return { k: result.k, docIds, rows: docIds.map((doc) => (doc < 0 ? -1 : rows[doc])), scores: result.scores };
  }

  /** The whole-image chunk of every doc, gathered once into its own matrix (docs × dim). */
  private wholeRows(): { matrix: Float32Array; docs: Int32Array } {
    if (!this.whole) {
      const rows = this.wholeChunkRows();
      const docs = Int32Array.from(rows.keys()).filter((doc) => rows[doc] >= 0);
      if (docs.length === 0) throw new Error(`index at ${this.location} has no whole-image chunks (built with chunker \`whole: false\`)`);
      const matrix = new Float32Array(docs.length * this.dim);
      const all = this.matrix();
      docs.forEach((doc, i) => matrix.set(all.subarray(rows[doc] * this.dim, (rows[doc] + 1) * this.dim), i * this.dim));
      this.whole = { matrix, docs };
    }
    return this.whole;
  }
}

/** What learning reads of a workspace. */
export function stateSource(workspace: Workspace): StateSource {
  return { dim: workspace.dim, modelSha256: workspace.manifest.model.sha256, rows: workspace.chunkCount, matrix: () => workspace.matrix(), docs: workspace.docs() };
}

export interface RefreshOptions {
  /** Fit again from scratch (e.g. on --rebuild). */
  readonly refit?: boolean;
  readonly impl?: Kernels;
  /**
   * Thumbnails by doc sha256 that the index run took from the images it had decoded anyway; only
   * the docs found in neither these nor the previous state are read and decoded again.
   */
  readonly thumbnails?: ReadonlyMap<string, PhotoThumbnails>;
}

/**
 * After an index run: bring the workspace's ranking.bin up to date with the committed index (kept
 * when current, updated with the existing whitening when the index changed by at most
 * REFIT_FRACTION, fitted again otherwise or when `refit`, e.g. on --rebuild), written atomically.
 * An empty index has nothing to learn.
 */
export async function refreshRankingState(dir: string, opts: RefreshOptions = {}): Promise<{ outcome: LearnOutcome; ms: number } | undefined> {
  let workspace: Workspace;
  try {
    workspace = Workspace.openForRead(dir);
  } catch (err) {
    if (err instanceof NoIndexError) return undefined;
    throw err;
  }
  try {
    const stored = readRankingState(workspace.dir);
    const previous = 'state' in stored ? stored.state : undefined;
    let source = stateSource(workspace);
    if (opts.refit || !previous || !stateMatches(previous, source)) source = { ...source, thumbnails: await takeThumbnails(workspace, previous, opts.thumbnails) };
    const learned = learnRankingState(source, opts.impl ?? kernels, previous, opts.refit);
    if (learned.outcome !== 'current') writeRankingState(workspace.dir, learned.state);
    return { outcome: learned.outcome, ms: learned.ms };
  } finally {
    workspace.close();
  }
}

/**
 * The thumbnails of the docs `previous` has none for: `taken` by the index run, else from their files
 * (decoded as the normalizer does), by sha256. A file that is gone, changed since it was indexed or
 * unreadable gets none: that doc is then found as the same photo by its chunks only.
 */
async function takeThumbnails(workspace: Workspace, previous?: RankingState, taken?: ReadonlyMap<string, PhotoThumbnails>): Promise<Map<string, PhotoThumbnails>> {
  const stored =
    previous && previous.thumbnails.length === previous.docShas.length * THUMBNAIL_LENGTH && previous.fineThumbnails.length === previous.docShas.length * FINE_LENGTH ? previous : undefined;
  const have = new Set(stored?.docShas.filter((_, id) => stored.thumbnails.subarray(id * THUMBNAIL_LENGTH, (id + 1) * THUMBNAIL_LENGTH).some((v) => v !== 0)));
  // The normalizer's size (its default when the manifest predates the parameter).
  const shorterSide = Number(workspace.manifest.chunking.shorter_side ?? 256);
  const out = new Map<string, PhotoThumbnails>();
  for (const doc of workspace.docs()) {
    if (have.has(doc.sha256) || out.has(doc.sha256)) continue;
    const fresh = taken?.get(doc.sha256);
    if (fresh) {
      out.set(doc.sha256, fresh);
      continue;
    }
    try {
      const bytes = await fs.promises.readFile(doc.path);
      if (createHash('sha256').update(bytes).digest('hex') !== doc.sha256) continue;
      const image = await decodeImage({ name: doc.path, bytes }, { shorterSide });
      out.set(doc.sha256, photoThumbnails(image));
    } catch {
      // Gone or unreadable: no thumbnail for this doc (see above).
    }
  }
  return out;
}
