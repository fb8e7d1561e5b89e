import { crc32, deflateRawSync } from 'node:zlib';
import { centralEntry, endRecords, localHeader } from '../../src/data/zip-stream.ts';

export interface ZipEntry {
  name: string;
  data?: Buffer;
}

/** A minimal ZIP writer (deflate), enough to make the archives users upload — and hostile ones. */
export function makeZip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const raw = e.data ?? Buffer.alloc(0);
    const isDir = e.name.endsWith('/');
    const body = isDir ? raw : deflateRawSync(raw);
    const header = { name: Buffer.from(e.name, 'utf8'), method: isDir ? 0 : 8, crc: crc32(raw), compressedSize: body.length, size: raw.length, offset };
    const local = localHeader(header);
    locals.push(local, body);
    centrals.push(centralEntry(header));
    offset += local.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  return Buffer.concat([...locals, cd, endRecords(entries.length, cd.length, offset)]);
}
