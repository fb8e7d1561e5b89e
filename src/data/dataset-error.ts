import { ServiceError } from '../errors.ts';

/** An uploaded dataset that cannot be used as it is: the message names the entry and the reason. */
export class DatasetError extends ServiceError {
  constructor(message: string, kind: 'invalid' | 'too-large' = 'invalid') {
    super(kind, message);
  }
}

export interface DatasetLimits {
  /** Most images in one dataset. */
  maxImages: number;
  /** Largest single file inside an archive, uncompressed. */
  maxEntryBytes: number;
  /** Largest archive content, uncompressed: what keeps a zip bomb from filling memory. */
  maxTotalBytes: number;
  /**
   * Most pixels all PNGs of an archive decode to, read from their headers before any is decoded:
   * what bounds the time an upload takes (a 21 kB PNG can declare 16 million gray pixels).
   */
  maxPixels: number;
}

/** maxPixels as UPLOAD_MAX_PIXELS's default (eight 4096×4096 images' worth). */
export const DEFAULT_DATASET_LIMITS: DatasetLimits = { maxImages: 100_000, maxEntryBytes: 8 * 1024 * 1024, maxTotalBytes: 512 * 1024 * 1024, maxPixels: 134_217_728 };
