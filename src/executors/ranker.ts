/** ranker: ranks the indexed docs against the query's encoded chunks (top-k + BiMatch, or whole-image cosine). */
import type { Ranker as Ranking } from '../flows/rank.js';
import { builtinServices } from './services.js';
import type { Executor, ExecutorContext, FlowDoc } from './types.js';

export class Ranker implements Executor {
  static readonly params = {
    /** Nearest stored chunks looked up per query chunk before BiMatch groups them by doc. */
    top_k: { default: 64, int: true, min: 1 },
    mode: { default: 'bimatch', values: ['bimatch', 'whole'] },
  };
  private ranker!: Ranking;

  constructor(private readonly opts: { top_k: number; mode: 'bimatch' | 'whole' }) {}

  open(ctx: ExecutorContext): void {
    this.ranker = builtinServices(ctx.services, ctx.pod, 'ranker').ranker!;
  }

  async process(doc: FlowDoc): Promise<void> {
    const { chunks, vectors } = doc;
    if (!chunks || !vectors) throw new Error(`ranker: ${doc.uri} has no encoded chunks (put an encoder before it)`);
    doc.ranking = await this.ranker.rank(vectors, chunks.map((chunk) => chunk.kind), { mode: this.opts.mode, chunkK: this.opts.top_k, ...doc.query });
  }
}
