/**
 * Indexed docs by numeric id: metadata, the original file and a cached thumbnail. Image bytes come
 * only from the path the index recorded for an id, never from a path the client names, and only
 * while that file still holds the indexed bytes (indexed-file.ts).
 */
import path from 'node:path';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { openIndexedFile, readIndexedFile } from '../indexed-file.js';
import type { ThumbnailCache } from '../thumbs.js';
import type { SearchBackend, ServedDoc } from '../types.js';

export interface DocRouteOptions {
  readonly searcher: SearchBackend;
  readonly thumbs: ThumbnailCache;
}

const docParams = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 } },
  required: ['id'],
} as const;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.avif': 'image/avif',
};

/** Where a doc's metadata, image and thumbnail are served (search results carry them too). */
export function docLinks(id: number): { doc: string; image: string; thumb: string } {
  return { doc: `/docs/${id}`, image: `/docs/${id}/image`, thumb: `/docs/${id}/thumb` };
}

export const docRoutes: FastifyPluginCallback<DocRouteOptions> = (app, { searcher, thumbs }, done) => {
  const findDoc = (id: number): ServedDoc => {
    const doc = searcher.workspace.doc(id);
    if (!doc) throw new ApiError('doc_not_found', `no doc with id ${id} (the index has ${searcher.workspace.docCount} docs, ids 0..${searcher.workspace.docCount - 1})`);
    return doc;
  };

  app.get<{ Params: { id: number } }>('/docs/:id', { schema: { params: docParams } }, (request) => {
    const doc = findDoc(request.params.id);
    return { id: doc.id, path: doc.path, label: doc.label, width: doc.width, height: doc.height, bytes: doc.bytes, sha256: doc.sha256, chunkCount: doc.chunkCount, ...docLinks(doc.id) };
  });

  app.get<{ Params: { id: number } }>('/docs/:id/image', { schema: { params: docParams } }, async (request, reply) => {
    const doc = findDoc(request.params.id);
    if (sendNotModified(request, reply, doc)) return reply;
    const file = await openIndexedFile(doc);
    return reply.type(CONTENT_TYPES[path.extname(doc.path).toLowerCase()] ?? 'application/octet-stream').send(file.createReadStream({ start: 0 }));
  });

  app.get<{ Params: { id: number } }>('/docs/:id/thumb', { schema: { params: docParams } }, async (request, reply) => {
    const doc = findDoc(request.params.id);
    if (sendNotModified(request, reply, doc)) return reply;
    const thumb = await thumbs
      .get(doc.sha256, () => readIndexedFile(doc))
      .catch((err: unknown) => {
        if (err instanceof ApiError) throw err;
        throw new ApiError('image_missing', `cannot make a thumbnail of doc ${doc.id}: its image file is unreadable as an image`, {}, { cause: err });
      });
    return reply.type(thumb.contentType).send(thumb.bytes);
  });
  done();
};

/** Indexed files are identified by content hash, so the hash is a strong validator. */
function sendNotModified(request: FastifyRequest, reply: FastifyReply, doc: ServedDoc): boolean {
  const etag = `"${doc.sha256}"`;
  reply.header('etag', etag).header('cache-control', 'private, max-age=300');
  if (request.headers['if-none-match'] !== etag) return false;
  reply.code(304).send();
  return true;
}
