/** ranker: ranks the indexed docs against the query's encoded chunks, in the mode the pod (or the query) asks for. */
import { DEFAULT_CHUNK_K, DEFAULT_RANK_MODE, RANK_MODES, thumbnail, type DocSearch, type RankMode } from '../search/index.js';
import { builtinServices } from './services.js';
import type { Executor, ExecutorContext, FlowDoc } from './types.js';

export class RankerExecutor implements Executor {
  static readonly params = {
    /** Nearest stored chunks looked up per query chunk before they are grouped by doc. */
    top_k: { default: DEFAULT_CHUNK_K, int: true, min: 1 },
    mode: { default: DEFAULT_RANK_MODE, values: RANK_MODES },
  };
  private search!: DocSearch;

  constructor(private readonly opts: { top_k: number; mode: RankMode }) {}

  open(ctx: ExecutorContext): void {
    this.search = builtinServices(ctx.services, ctx.pod, 'search').search!;
  }

  async process(doc: FlowDoc): Promise<void> {
    const { chunks, vectors } = doc;
    if (!chunks || !vectors) throw new Error(`ranker: ${doc.uri} has no encoded chunks (put an encoder before it)`);
    const kinds = chunks.map((chunk) => chunk.kind);
    doc.ranking = await this.search.rank({ vectors, kinds, ...(doc.image && { thumbnail: thumbnail(doc.image) }) }, { mode: this.opts.mode, chunkK: this.opts.top_k, ...doc.query });
  }
}
