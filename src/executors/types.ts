/**
 * The executor interface: what a pod of a flow runs. A flow hands every document to each pod's
 * executor in graph order (`needs`); an executor reads the fields earlier pods filled in and
 * writes its own. User executors are ES modules whose default export (or `Executor` export)
 * is a class implementing `Executor`, named in the flow file as `uses: ./my-executor.js`.
 */
import type { Box, RawImage } from '../kernels/types.js';
import type { ModelManifest } from '../model/index.js';
import type { PhotoThumbnails, Ranking, SearchOptions } from '../search/index.js';
import type { ChunkKind, NewDoc } from '../store/index.js';

/** One chunk of a document: a box of `image` (a window of the resized image, or all of it). */
export interface FlowChunk {
  readonly kind: ChunkKind;
  /** In pixels of `image`. A window is the model input's size; a whole chunk's box is all of `image`, which the encoder squashes to that size. */
  readonly box: Box;
  readonly image: RawImage;
}

/** A decoded image as the normalizer leaves it: RGB, shorter side resized, with the size of the source file. */
export interface FlowImage extends RawImage {
  readonly sourceWidth: number;
  readonly sourceHeight: number;
}

/** A document travelling through a flow. Pods on parallel branches must write different fields. */
export interface FlowDoc {
  /** Position in the input stream (0-based); results come out in this order. */
  readonly seq: number;
  /** Absolute path of the file, or a name for in-memory query images. */
  readonly uri: string;
  /** Raw file bytes (loader). */
  bytes?: Uint8Array;
  /** Hex sha256 of `bytes` (loader): the document's identity in the index. */
  sha256?: string;
  /** Decoded, resized image (normalizer; crafters may replace it). */
  image?: FlowImage;
  /** Chunks to encode (chunker). */
  chunks?: FlowChunk[];
  /** chunks.length × dim L2-normalized embeddings (encoder). */
  vectors?: Float32Array;
  /** Index flows: the doc's store entry, filled in by chunk_indexer and doc_indexer, checked by join. */
  entry?: Partial<NewDoc>;
  /** Index flows: the same-photo thumbnails of `image` (doc_indexer), for the ranking state. */
  thumbnails?: PhotoThumbnails;
  /** Query flows: what the caller asked for (ranker input). */
  query?: SearchOptions;
  /** Query flows: ranked docs (ranker output). */
  ranking?: Ranking;
  /** Free space for custom executors. */
  readonly tags: Record<string, unknown>;
}

/** Services a flow offers its executors; which ones are present depends on the flow (index or query). */
export interface FlowServices {
  readonly mode: 'index' | 'query';
  /** The model manifest, for executors that need input size or normalization. */
  readonly model?: ModelManifest;
  /** Extra state the built-in executors share (workspace, data dir, labels); opaque to user executors. */
  readonly [key: string]: unknown;
}

export interface ExecutorContext {
  /** Pod name in the flow file. */
  readonly pod: string;
  /** Absolute path of the flow file. */
  readonly flowFile: string;
  /** The pod's `replicas` (1 when not set). */
  readonly replicas: number;
  readonly services: FlowServices;
}

export interface Executor {
  /** Called once before the first document. */
  open?(ctx: ExecutorContext): void | Promise<void>;
  /** Process one document in place. Throw `SkipDoc` (or an image `InputError`) to drop it with a reason. */
  process(doc: FlowDoc): void | Promise<void>;
  /** Called once after the last document (also after a failure). */
  close?(): void | Promise<void>;
}

/** Declaration of one `with:` parameter: its default fixes the type; unknown keys are flow errors. */
export interface ParamSpec {
  readonly default: number | string | boolean;
  /** Numbers only: must be an integer. */
  readonly int?: boolean;
  readonly min?: number;
  readonly max?: number;
  /** Strings only: allowed values. */
  readonly values?: readonly string[];
}

export interface ExecutorClass {
  /** Receives the pod's `with:` parameters, defaults filled in when the class declares `params`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each executor types its own parameters
  new (params: any): Executor;
  /** When present, `with:` keys are checked against it (unknown key, type, range) with file and line. */
  readonly params?: Readonly<Record<string, ParamSpec>>;
  /** Whether the executor uses `replicas` (the encoder: worker count). Other pods reject the key. */
  readonly supportsReplicas?: boolean;
}
