import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { PNG_HEADER_BYTES, readPngHeader } from '../image/png.ts';
import { imageToMnistPixels } from '../image/preprocess.ts';
import type { LabelledImages } from './labelled-images.ts';
import { DatasetError, DEFAULT_DATASET_LIMITS, type DatasetLimits } from './dataset-error.ts';
import { DIGIT_PIXELS } from '../schemas/digit.ts';
import { formatCount } from '../format.ts';

/** What archivers add that is not content. */
const IGNORED = (path: string) => path.startsWith('__MACOSX/') || path.split('/').some((p) => p.startsWith('.'));

async function readCapped(stream: Readable, cap: number, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > cap) {
      stream.destroy();
      throw new DatasetError(`${name} is larger than ${cap} bytes uncompressed`, 'too-large');
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The first `bytes` bytes of an entry (fewer if it is shorter), inflating no more of it than that takes. */
async function readPrefix(stream: Readable, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    total += (chunk as Buffer).length;
    if (total >= bytes) break; // leaving the loop destroys the stream
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}

/** Splits `[root/]<digit>/<file>` and checks the layout. */
function labelOf(path: string, root: string | undefined): number {
  const parts = path.split('/');
  const rel = root !== undefined && parts[0] === root ? parts.slice(1) : parts;
  if (rel.length !== 2) throw new DatasetError(`'${path}' is not inside a digit folder: the ZIP must hold folders 0 … 9 of PNG images`);
  if (!/^[0-9]$/.test(rel[0])) throw new DatasetError(`'${path}' is in folder '${rel[0]}', which is not a digit 0-9`);
  return Number(rel[0]);
}

/**
 * Reads an ImageFolder ZIP (folders `0`…`9` of PNG images, optionally inside one top-level
 * folder). Every image goes through the same preprocessing as /v1/predict. Names that climb out of
 * the archive, sizes over the limits and any file that is not a PNG in a digit folder are refused;
 * so is an archive whose PNGs declare more than `limits.maxPixels` in all, from a first pass over
 * their headers (a few dozen bytes of each), before any image is decoded.
 */
export async function readImageFolderZip(zip: Buffer, limits: DatasetLimits = DEFAULT_DATASET_LIMITS): Promise<LabelledImages> {
  let archive: yauzl.ZipFile;
  try {
    // strictFileNames: backslashes are not separators, so "..\\x" cannot pose as a path.
    archive = await yauzl.fromBufferPromise(zip, { strictFileNames: true, validateEntrySizes: true });
  } catch (err) {
    throw new DatasetError(`not a readable ZIP archive: ${(err as Error).message}`);
  }

  const entries: yauzl.Entry[] = [];
  const folders = new Set<string>();
  let declared = 0;
  try {
    for await (const entry of archive.eachEntry()) {
      if (IGNORED(entry.fileName)) continue;
      if (entry.fileName.endsWith('/')) {
        folders.add(entry.fileName.slice(0, -1));
        continue;
      }
      if (entries.length >= limits.maxImages) throw new DatasetError(`the archive holds more than ${limits.maxImages} images`, 'too-large');
      if (entry.uncompressedSize > limits.maxEntryBytes) throw new DatasetError(`'${entry.fileName}' is ${entry.uncompressedSize} bytes uncompressed; at most ${limits.maxEntryBytes} per image`, 'too-large');
      declared += entry.uncompressedSize;
      if (declared > limits.maxTotalBytes) throw new DatasetError(`the archive expands to more than ${limits.maxTotalBytes} bytes`, 'too-large');
      entries.push(entry);
    }
  } catch (err) {
    archive.close();
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`the ZIP archive is invalid: ${(err as Error).message}`); // e.g. yauzl's "invalid relative path"
  }

  if (entries.length === 0) throw new DatasetError('the archive holds no images: expected folders 0 … 9 of PNG files');
  const tops = new Set(entries.map((e) => e.fileName.split('/')[0]));
  const root = tops.size === 1 && entries.every((e) => e.fileName.split('/').length === 3) ? [...tops][0] : undefined;

  const labels = entries.map((e) => labelOf(e.fileName, root));
  const images = new Uint8Array(entries.length * DIGIT_PIXELS);
  try {
    const notPng = entries.find((e) => !/\.png$/i.test(e.fileName));
    if (notPng) throw new DatasetError(`'${notPng.fileName}' is not a PNG image (only .png files are accepted)`);
    let pixels = 0;
    for (const entry of entries) {
      const header = await readPrefix(await archive.openReadStreamPromise(entry), PNG_HEADER_BYTES);
      try {
        const { width, height } = readPngHeader(header);
        pixels += width * height;
      } catch (err) {
        throw new DatasetError(`'${entry.fileName}': ${(err as Error).message}`);
      }
    }
    if (pixels > limits.maxPixels) {
      throw new DatasetError(`the PNGs of this upload decode to ${formatCount(pixels)} pixels; at most ${formatCount(limits.maxPixels)} (UPLOAD_MAX_PIXELS)`, 'too-large');
    }
    for (let i = 0; i < entries.length; i++) {
      const name = entries[i].fileName;
      const bytes = await readCapped(await archive.openReadStreamPromise(entries[i]), limits.maxEntryBytes, `'${name}'`);
      try {
        images.set(imageToMnistPixels(bytes), i * DIGIT_PIXELS);
      } catch (err) {
        throw new DatasetError(`'${name}': ${(err as Error).message}`);
      }
    }
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`the ZIP archive is corrupt: ${(err as Error).message}`);
  } finally {
    archive.close();
  }

  // A digit folder that is present but empty is a mistake worth reporting, not a class to skip.
  const used = new Set(labels);
  for (const folder of folders) {
    const rel = root !== undefined && folder.startsWith(`${root}/`) ? folder.slice(root.length + 1) : folder;
    if (/^[0-9]$/.test(rel) && !used.has(Number(rel))) throw new DatasetError(`class folder '${folder}' holds no images`);
  }
  return { images, labels: Uint8Array.from(labels), count: entries.length };
}
