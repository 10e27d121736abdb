export { findImages } from './images.js';
export { readLabelsCsv } from './labels.js';
