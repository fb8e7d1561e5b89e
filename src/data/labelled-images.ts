/** Digits with their labels, as every dataset reader gives them and the trainer takes them. */
export interface LabelledImages {
  /** count × 28 × 28 pixels, 0 = background, 255 = ink, row-major. */
  images: Uint8Array;
  /** The digit 0–9 of each image. */
  labels: Uint8Array;
  count: number;
}
