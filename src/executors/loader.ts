/**
 * loader: reads the file's bytes; in an index flow also their sha256 (the doc's identity), and drops
 * docs already indexed and second copies of the same content. A query never needs the hash.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isHttpUrl } from '../dataset/index.js';
import { fetchBytes } from '../download/index.js';
import { SkipDoc } from '../errors.js';
import { builtinServices, type IndexedContent } from './services.js';
import type { Executor, ExecutorContext, FlowDoc } from './types.js';

export class Loader implements Executor {
  static readonly params = { max_bytes: { default: 256 * 1024 * 1024, int: true, min: 1 } };
  private indexed?: IndexedContent;
  /** Index flows: sha256 → first file with that content in this run. */
  private readonly seen = new Map<string, string>();

  constructor(private readonly opts: { max_bytes: number }) {}

  open(ctx: ExecutorContext): void {
    this.indexed = builtinServices(ctx.services, ctx.pod).indexed;
  }

  async process(doc: FlowDoc): Promise<void> {
    if (!doc.bytes && isHttpUrl(doc.uri)) {
      // A doc of a URL list (index --data urls.txt): the image is read over HTTP(S), in memory.
      try {
        doc.bytes = await fetchBytes(doc.uri, { maxBytes: this.opts.max_bytes });
      } catch (err) {
        throw new SkipDoc(doc.uri, `cannot download (${(err as Error).message})`);
      }
    }
    if (!doc.bytes) {
      let size: number;
      try {
        const info = await stat(doc.uri);
        if (!info.isFile()) throw new SkipDoc(doc.uri, 'not a regular file');
        size = info.size;
      } catch (err) {
        if (err instanceof SkipDoc) throw err;
        throw new SkipDoc(doc.uri, `cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      if (size > this.opts.max_bytes) throw new SkipDoc(doc.uri, `file too large: ${size} bytes, limit ${this.opts.max_bytes}`);
      doc.bytes = await readFile(doc.uri);
    }
    if (doc.bytes.byteLength === 0) throw new SkipDoc(doc.uri, 'empty file');
    if (!this.indexed) return;
    doc.sha256 = createHash('sha256').update(doc.bytes).digest('hex');
    if (this.indexed.hasDoc(doc.sha256)) throw new SkipDoc(doc.uri, 'already indexed', true);
    const first = this.seen.get(doc.sha256);
    if (first !== undefined) throw new SkipDoc(doc.uri, `same content as ${first}`);
    this.seen.set(doc.sha256, doc.uri);
  }
}
