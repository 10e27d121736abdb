export { cacheDir } from './cache.js';
export { downloadFile, sha256File } from './http.js';
export { fetchBytes, type FetchBytesOptions } from './fetch-bytes.js';
export type { DownloadHooks, DownloadOptions, DownloadProgress } from './http.js';
export { ensureModel, MODEL_REGISTRY, DEFAULT_MODEL } from './models.js';
export type { EnsureModelOptions, ModelEntry } from './models.js';
export { ensureDataset, FLOWERS_URL, FLOWER_CLASSES, IMAGES_PER_CLASS, labelsCsv, parseSha256Sums, bundledChecksumsFile } from './dataset.js';
export type { EnsureDatasetOptions } from './dataset.js';
