/** Every ranking mode's ranker, by mode: the one place a new ranking is added. */
import type { Kernels } from '../../kernels/index.js';
import { matrixIndex, type ChunkIndex, type Ranker, type RankMode } from '../types.js';
import { BiMatchRanker } from './bimatch.js';
import { ChamferRanker } from './chamfer.js';
import { ExpandedRanker } from './expanded.js';
import { WholeRanker } from './whole.js';

export const RANKERS: Readonly<Record<RankMode, { describe: string; score: string; create(index: ChunkIndex, impl: Kernels): Ranker }>> = {
  expanded: {
    describe: 'whitened mean doc vectors with neighbour expansion (DBA + alpha-QE), the same photo first',
    score: 'match: cosine of the expanded vectors, 1 = same class centre; "same photo" marks an edited copy',
    create: (index, impl) => new ExpandedRanker(matrixIndex(index, 'expanded ranking'), impl),
  },
  bimatch: { describe: 'BiMatch over all chunks (chunk top-k, then doc-level matching)', score: 'BiMatch score, 1 = identical', create: (index, impl) => new BiMatchRanker(index, impl) },
  whole: { describe: 'cosine of the whole-image chunks alone', score: 'whole-image cosine', create: (index) => new WholeRanker(index) },
  chamfer: {
    describe: 'symmetric mean-of-max cosine over window chunks, every doc scored (no top-k cut-off)',
    score: 'mean best window cosine',
    create: (index, impl) => new ChamferRanker(matrixIndex(index, 'chamfer ranking'), impl),
  },
};
