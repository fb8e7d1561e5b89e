import pngjs from 'pngjs';

/** A grayscale 8-bit PNG of the given pixels (0..255), as MNIST digits are stored. */
export function encodeGrayPng(pixels: Uint8Array | number[], width = 28, height = 28): Buffer {
  const png = new pngjs.PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  png.data = Buffer.from(Uint8Array.from(pixels));
  return pngjs.PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

/** An RGBA 8-bit PNG (4 bytes a pixel). */
export function encodeRgbaPng(rgba: Uint8Array | number[], width: number, height: number): Buffer {
  const png = new pngjs.PNG({ width, height });
  png.data = Buffer.from(Uint8Array.from(rgba));
  return pngjs.PNG.sync.write(png);
}
