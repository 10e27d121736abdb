/**
 * The local workspace as a `ChunkIndex`: nearest-neighbour search is the kernels' exact cosine
 * top-k over the memory-mapped chunk matrix (one pass for all query chunks).
 */
import { kernels, type Kernels, type TopKResult } from '../kernels/index.js';
import type { Workspace } from '../store/index.js';
import type { ChunkIndex } from './types.js';

export class LocalChunkIndex implements ChunkIndex {
  private whole?: { matrix: Float32Array; docs: Int32Array };

  constructor(
    readonly workspace: Workspace,
    private readonly impl: Kernels = kernels,
  ) {}

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

  chunkTopK(queries: Float32Array, k: number): Promise<TopKResult> {
    return this.impl.cosineTopKAsync({ matrix: this.workspace.matrix(), rows: this.chunkCount, dim: this.dim, queries, k: Math.min(k, this.chunkCount) });
  }

  async wholeTopK(query: Float32Array, k: number): Promise<TopKResult> {
    const { matrix, docs } = this.wholeRows();
    const result = await this.impl.cosineTopKAsync({ matrix, rows: docs.length, dim: this.dim, queries: query, k: Math.min(k, docs.length) });
    const ids = result.ids.map((slot) => (slot < 0 ? -1 : docs[slot]!));
    return { k: result.k, ids, scores: result.scores };
  }

  /** The whole-image chunk of every doc, gathered once into its own matrix (docs × dim). */
  private wholeRows(): { matrix: Float32Array; docs: Int32Array } {
    if (!this.whole) {
      const rows = this.wholeChunkRows();
      const docs = Int32Array.from(rows.keys()).filter((doc) => rows[doc]! >= 0);
      if (docs.length === 0) throw new Error(`index at ${this.location} has no whole-image chunks (built with chunker \`whole: false\`)`);
      const matrix = new Float32Array(docs.length * this.dim);
      const all = this.matrix();
      docs.forEach((doc, i) => matrix.set(all.subarray(rows[doc]! * this.dim, (rows[doc]! + 1) * this.dim), i * this.dim));
      this.whole = { matrix, docs };
    }
    return this.whole;
  }
}
