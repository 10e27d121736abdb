export { findImages, listImages } from './images.js';
export type { ImageListing } from './images.js';
export { readLabelsCsv } from './labels.js';
export { isHttpUrl, readUrlList } from './urls.js';
