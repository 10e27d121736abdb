/**
 * "More like this" and duplicates from what is indexed, without an upload or an encoding:
 * GET /docs/:id/similar ranks with the doc's stored vectors (the doc itself left out of the results),
 * GET /duplicates lists groups of near-identical images (as `flower-native duplicates`).
 */
import type { FastifyPluginCallback } from 'fastify';
import type { Searcher } from '../../flows/search.js';
import { DEFAULT_DUPLICATE_THRESHOLD, RANK_MODES, type RankMode } from '../../search/index.js';
import { ApiError } from '../errors.js';
import type { SearchBackend } from '../types.js';
import { docLinks } from './docs.js';

export interface SimilarRouteOptions {
  readonly searcher: SearchBackend;
  readonly maxTop: number;
}

type StoredSearch = Pick<Searcher, 'searchDoc' | 'duplicates'>;

export const similarRoutes: FastifyPluginCallback<SimilarRouteOptions> = (app, { searcher, maxTop }, done) => {
  const stored = (): StoredSearch => {
    if (!('searchDoc' in searcher) || !('duplicates' in searcher)) throw new ApiError('not_found', "this server's searcher cannot rank from stored vectors");
    return searcher as unknown as StoredSearch;
  };

  app.get<{ Params: { id: number }; Querystring: { top: number; minScore?: number; mode?: RankMode } }>(
    '/docs/:id/similar',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 } }, required: ['id'] },
        querystring: {
          type: 'object',
          properties: { top: { type: 'integer', minimum: 1, maximum: maxTop, default: 10 }, minScore: { type: 'number', minimum: -1, maximum: 1 }, mode: { type: 'string', enum: [...RANK_MODES] } },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (!searcher.workspace.doc(id)) throw new ApiError('doc_not_found', `no doc with id ${id} (the index has ${searcher.workspace.docCount} docs)`);
      const { top, minScore, mode } = request.query;
      const result = await stored().searchDoc(id, { top, minScore, mode });
      return { query: { docId: id, ...docLinks(id) }, results: result.results.map((hit) => ({ ...hit, ...docLinks(hit.docId) })), timings: result.timings };
    },
  );

  app.get<{ Querystring: { threshold: number } }>(
    '/duplicates',
    {
      schema: { querystring: { type: 'object', properties: { threshold: { type: 'number', minimum: -1, maximum: 1, default: DEFAULT_DUPLICATE_THRESHOLD } }, additionalProperties: false } },
    },
    (request) => {
      const found = stored().duplicates(request.query.threshold);
      return {
        threshold: found.threshold,
        groups: found.groups.map((ids) => ids.map((id) => ({ docId: id, path: searcher.workspace.doc(id)?.path, ...docLinks(id) }))),
        pairs: found.pairs,
      };
    },
  );
  done();
};
