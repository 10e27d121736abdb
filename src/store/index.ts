export {
  Workspace, NoIndexError, IncompatibleIndexError, FORMAT_VERSION, MANIFEST_FILE, MATRIX_FILE, DB_FILE, canonicalJson,
} from './workspace.js';
export type { ChunkKind, ChunkRecord, DocRecord, ModelIdentity, NewDoc, OpenForWriteOptions, WorkspaceManifest } from './workspace.js';
export { NPY_DATA_OFFSET, npyHeader, parseNpyHeader } from './npy.js';
export type { NpyInfo } from './npy.js';
