export { Workspace } from './workspace.js';
export type { OpenForWriteOptions } from './workspace.js';
export { FORMAT_VERSION, MANIFEST_FILE, MATRIX_FILE, DB_FILE, canonicalJson } from './manifest.js';
export type { ModelIdentity, WorkspaceManifest } from './manifest.js';
export type { ChunkKind, ChunkRecord, DocRecord, NewDoc } from './metadata.js';
export { SOURCES_FILE, readSources } from './sources.js';
export type { WorkspaceSources } from './sources.js';
export { NPY_DATA_OFFSET, npyHeader, parseNpyHeader } from './npy.js';
export type { NpyInfo } from './npy.js';
