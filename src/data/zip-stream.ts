import { crc32 } from 'node:zlib';

export interface ZipFile {
  name: string;
  data: Buffer;
}

/** What a ZIP's local header and central directory entry say of one file. */
export interface ZipEntryHeader {
  /** The name as UTF-8 bytes. */
  name: Buffer;
  /** 0 stored, 8 deflated. */
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Where its local header starts in the archive. */
  offset: number;
}

/** A file's local header (its name follows it, then its data). */
export function localHeader(e: ZipEntryHeader): Buffer {
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(0x0800, 6); // UTF-8 names
  local.writeUInt16LE(e.method, 8);
  local.writeUInt32LE(e.crc, 14);
  local.writeUInt32LE(e.compressedSize, 18);
  local.writeUInt32LE(e.size, 22);
  local.writeUInt16LE(e.name.length, 26);
  return Buffer.concat([local, e.name]);
}

/** A file's central directory entry, with its name. */
export function centralEntry(e: ZipEntryHeader): Buffer {
  const entry = Buffer.alloc(46);
  entry.writeUInt32LE(0x02014b50, 0);
  entry.writeUInt16LE(20, 4);
  entry.writeUInt16LE(20, 6);
  entry.writeUInt16LE(0x0800, 8);
  entry.writeUInt16LE(e.method, 10);
  entry.writeUInt32LE(e.crc, 16);
  entry.writeUInt32LE(e.compressedSize, 20);
  entry.writeUInt32LE(e.size, 24);
  entry.writeUInt16LE(e.name.length, 28);
  entry.writeUInt32LE(e.offset, 42);
  return Buffer.concat([entry, e.name]);
}

/** The end records after a central directory of `count` entries and `size` bytes starting at `offset` (ZIP64's too past 65,535 files). */
export function endRecords(count: number, size: number, offset: number): Buffer {
  const tail: Buffer[] = [];
  if (count > 0xffff) {
    const end64 = Buffer.alloc(56);
    end64.writeUInt32LE(0x06064b50, 0);
    end64.writeBigUInt64LE(44n, 4); // size of the rest of this record
    end64.writeUInt16LE(45, 12);
    end64.writeUInt16LE(45, 14);
    end64.writeBigUInt64LE(BigInt(count), 24);
    end64.writeBigUInt64LE(BigInt(count), 32);
    end64.writeBigUInt64LE(BigInt(size), 40);
    end64.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + size), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(end64, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(size, 12);
  end.writeUInt32LE(offset, 16);
  tail.push(end);
  return Buffer.concat(tail);
}

/**
 * A ZIP archive written as it goes, from files that come as they are read: each file is stored
 * (method 0; PNGs are compressed already), so writing costs a CRC per file and memory for the
 * central directory only. Offsets past 4 GB are not supported (a million corrections take ~400 MB).
 */
export async function* zipStream(files: AsyncIterable<ZipFile>): AsyncGenerator<Buffer> {
  const central: Buffer[] = [];
  let offset = 0;
  let count = 0;
  for await (const { name, data } of files) {
    const header: ZipEntryHeader = { name: Buffer.from(name, 'utf8'), method: 0, crc: crc32(data), compressedSize: data.length, size: data.length, offset };
    const local = localHeader(header);
    if (offset + local.length + data.length > 0xffffffff) throw new RangeError('ZIP archives past 4 GB are not supported');
    central.push(centralEntry(header));
    count++;
    offset += local.length + data.length;
    yield Buffer.concat([local, data]);
  }
  const directory = Buffer.concat(central);
  yield Buffer.concat([directory, endRecords(count, directory.length, offset)]);
}
