import { gunzipSync } from 'node:zlib';
import { toMnistInput } from '../image/preprocess.ts';
import { DatasetError, DEFAULT_DATASET_LIMITS, type DatasetLimits } from './dataset-error.ts';
import { IdxFormatError, parseIdxPair } from './idx.ts';
import type { LabelledImages } from './labelled-images.ts';
import { DIGIT_PIXELS } from '../schemas/digit.ts';


function maybeGunzip(buf: Buffer, name: string, limit: number): Buffer {
  if (buf.length < 2 || buf[0] !== 0x1f || buf[1] !== 0x8b) return buf;
  try {
    return gunzipSync(buf, { maxOutputLength: limit });
  } catch (err) {
    throw new DatasetError(`${name}: not a valid gzip file, or larger than ${limit} bytes uncompressed (${(err as Error).message})`);
  }
}

/** An uploaded IDX image/label pair (as MNIST ships, gzipped or not), preprocessed as /v1/predict does. */
export function readIdxUpload(imagesFile: Buffer, labelsFile: Buffer, limits: DatasetLimits = DEFAULT_DATASET_LIMITS): LabelledImages {
  // Inflated no further than the largest pair accepted (header + maxImages), so a gzip bomb costs little.
  const images = maybeGunzip(imagesFile, 'images', Math.min(limits.maxTotalBytes, 16 + limits.maxImages * DIGIT_PIXELS));
  const labels = maybeGunzip(labelsFile, 'labels', Math.min(limits.maxTotalBytes, 8 + limits.maxImages));
  let parsed: LabelledImages;
  try {
    parsed = parseIdxPair(images, labels);
  } catch (err) {
    if (err instanceof IdxFormatError) throw new DatasetError(`IDX upload: ${err.message}`);
    throw err;
  }
  if (parsed.count === 0) throw new DatasetError('IDX upload holds no images');
  if (parsed.count > limits.maxImages) throw new DatasetError(`IDX upload holds ${parsed.count} images; at most ${limits.maxImages}`, 'too-large');
  const out = new Uint8Array(parsed.count * DIGIT_PIXELS);
  for (let i = 0; i < parsed.count; i++) {
    const img = { width: 28, height: 28, data: parsed.images.subarray(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS) };
    out.set(toMnistInput(img), i * DIGIT_PIXELS);
  }
  return { images: out, labels: Uint8Array.from(parsed.labels), count: parsed.count };
}
