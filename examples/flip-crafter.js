// A custom executor: mirrors every image left-right after decoding, so the index holds the
// mirrored pictures. Used by flip-index.yml (`uses: ./flip-crafter.js`, resolved relative to the
// flow file). Any ES module whose default export is a class with process(doc) works.

/** @typedef {import('flower-native').Executor} Executor */
/** @typedef {import('flower-native').FlowDoc} FlowDoc */

/** @implements {Executor} */
export default class FlipCrafter {
  /** Declared parameters: `with:` keys are checked against these (unknown key, type) with file and line. */
  static params = { enabled: { default: true } };

  /** @param {{ enabled: boolean }} params the pod's `with:` values, defaults filled in */
  constructor(params) {
    this.enabled = params.enabled;
  }

  /** @param {FlowDoc} doc */
  process(doc) {
    const image = doc.image;
    if (!this.enabled || !image) return;
    const { width, height, channels, data } = image;
    const flipped = new Uint8Array(data.length);
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let x = 0; x < width; x++) {
        const from = row + x * channels;
        const to = row + (width - 1 - x) * channels;
        for (let c = 0; c < channels; c++) flipped[to + c] = data[from + c];
      }
    }
    doc.image = { ...image, data: flipped };
    doc.tags.flipped = true;
  }
}
