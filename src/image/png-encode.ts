import pngjs from 'pngjs';

/** A grayscale 8-bit PNG of the given pixels (0..255, row by row), as MNIST digits are stored. */
export function encodeGrayPng(pixels: Uint8Array | number[], width = 28, height = 28): Buffer {
  // pngjs would write whatever the buffer holds, so a wrong-sized image would fail far from its cause.
  if (pixels.length !== width * height) throw new RangeError(`a ${width}×${height} image needs ${width * height} values, got ${pixels.length}`);
  const png = new pngjs.PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  png.data = Buffer.from(Uint8Array.from(pixels));
  return pngjs.PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}
