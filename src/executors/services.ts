/** What the flows built here (index, query) hand the built-in executors, beside the public FlowServices. */
import type { FlowServices } from './types.js';
import type { LoadedModel } from '../model/index.js';
import type { DocSearch } from '../search/index.js';

/** What the index flow's loader asks of the store it indexes into: a local Workspace, or a Postgres job's stored contents. */
export interface IndexedContent {
  /** Whether the store already holds a doc of this content (hex sha256); the loader skips it. */
  hasDoc(sha256: string): boolean;
}

export interface BuiltinServices extends FlowServices {
  readonly model: LoadedModel;
  /** index: the store being written (the loader skips what it already holds). */
  readonly indexed?: IndexedContent;
  /** index: the store keeps same-photo thumbnails (a workspace's ranking state; a Postgres store has none), so doc_indexer takes them. */
  readonly keepsThumbnails?: boolean;
  /** query: ranks against the opened workspace. */
  readonly search?: DocSearch;
  /** Absolute file path → class name, from the data folder's labels.csv. */
  readonly labels?: ReadonlyMap<string, string>;
  /** Command-line overrides of the encoder pod's settings. */
  readonly encoder?: { readonly replicas?: number; readonly batchSize?: number };
}

/** The built-in services, or a clear error when a built-in executor runs in a flow that lacks them. */
export function builtinServices(services: FlowServices, pod: string, need?: 'indexed' | 'search'): BuiltinServices {
  const builtin = services as BuiltinServices;
  if (!builtin.model) throw new Error(`pod '${pod}': no model in this flow`);
  if (need && !builtin[need]) throw new Error(`pod '${pod}' runs only in ${need === 'search' ? 'a query' : 'an index'} flow`);
  return builtin;
}
