/**
 * chunk_indexer and doc_indexer fill in the two halves of a document's store entry (its chunks
 * with vectors, and its metadata) on parallel branches; join waits for both and checks the entry
 * is complete before the flow hands it to the store.
 */
import { photoThumbnails } from '../search/index.js';
import { builtinServices } from './services.js';
import type { Executor, ExecutorContext, FlowDoc } from './types.js';

export class ChunkIndexer implements Executor {
  /** No parameters: any `with:` key is an error. */
  static readonly params = {};

  process(doc: FlowDoc): void {
    const { chunks, vectors, image } = doc;
    if (!chunks || !vectors || !image) throw new Error(`chunk_indexer: ${doc.uri} has no encoded chunks (put an encoder before it)`);
    if (chunks.length === 0) throw new Error(`chunk_indexer: ${doc.uri} has no chunks`);
    const dim = vectors.length / chunks.length;
    if (!Number.isInteger(dim)) throw new Error(`chunk_indexer: ${doc.uri} has ${vectors.length} vector values for ${chunks.length} chunks`);
    for (let i = 0; i < vectors.length; i++) {
      if (!Number.isFinite(vectors[i])) throw new Error(`chunk_indexer: ${doc.uri} chunk ${Math.floor(i / dim)} has a non-finite embedding value`);
    }
    // Boxes are stored in pixels of the source file, where users look for them.
    const sx = image.sourceWidth / image.width;
    const sy = image.sourceHeight / image.height;
    const entry = (doc.entry ??= {});
    entry.chunks = chunks.map(({ kind, box }) => ({
      kind,
      box:
        kind === 'whole'
          ? { x: 0, y: 0, width: image.sourceWidth, height: image.sourceHeight }
          : { x: Math.round(box.x * sx), y: Math.round(box.y * sy), width: Math.round(box.width * sx), height: Math.round(box.height * sy) },
    }));
    entry.vectors = vectors;
  }
}

export class DocIndexer implements Executor {
  static readonly params = {};
  private labels?: ReadonlyMap<string, string>;
  private keepsThumbnails = false;

  open(ctx: ExecutorContext): void {
    const services = builtinServices(ctx.services, ctx.pod);
    this.labels = services.labels;
    this.keepsThumbnails = services.keepsThumbnails === true;
  }

  process(doc: FlowDoc): void {
    const { bytes, sha256, image } = doc;
    if (!bytes || !sha256 || !image) throw new Error(`doc_indexer: ${doc.uri} has not been loaded and normalized (it needs the normalizer)`);
    const entry = (doc.entry ??= {});
    entry.path = doc.uri;
    entry.sha256 = sha256;
    entry.bytes = bytes.byteLength;
    entry.width = image.sourceWidth;
    entry.height = image.sourceHeight;
    const label = this.labels?.get(doc.uri);
    if (label !== undefined) entry.label = label;
    // From the image decoded for chunking: the ranking state need not read and decode the file again.
    if (this.keepsThumbnails) doc.thumbnails = photoThumbnails(image);
  }
}

export class Join implements Executor {
  static readonly params = {};
  private mode: 'index' | 'query' = 'index';

  open(ctx: ExecutorContext): void {
    this.mode = ctx.services.mode;
  }

  process(doc: FlowDoc): void {
    if (this.mode !== 'index') return;
    if (!doc.entry?.vectors) throw new Error(`join: ${doc.uri} has no chunk vectors (the flow needs a chunk_indexer before join)`);
    if (!doc.entry.sha256) throw new Error(`join: ${doc.uri} has no doc metadata (the flow needs a doc_indexer before join)`);
  }
}
