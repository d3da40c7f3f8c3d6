/**
 * Zips for tests. buildZip() writes well-formed archives with yazl; craftZip() writes raw
 * bytes for the hostile ones yazl refuses to make (absolute names, `..`, lying sizes,
 * mismatched local headers).
 */
import { deflateRawSync, crc32 } from 'node:zlib';
import { ZipFile } from 'yazl';

export interface ZipSpecEntry {
  name: string;
  /** File content, or the target for a symlink. Omit for a directory. */
  data?: string | Buffer;
  /** Unix mode with type bits, e.g. 0o100755, 0o120777 (symlink), 0o40755 (directory). */
  mode?: number;
  directory?: boolean;
  compress?: boolean;
}

export async function buildZip(entries: readonly ZipSpecEntry[]): Promise<Buffer> {
  const zip = new ZipFile();
  for (const e of entries) {
    if (e.directory === true) {
      zip.addEmptyDirectory(e.name, e.mode === undefined ? {} : { mode: e.mode });
    } else {
      const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
      zip.addBuffer(data, e.name, {
        compress: e.compress ?? true,
        ...(e.mode === undefined ? {} : { mode: e.mode }),
      });
    }
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function symlink(name: string, target: string): ZipSpecEntry {
  return { name, data: target, mode: 0o120777, compress: false };
}

export interface RawZipEntry {
  name: string | Buffer;
  data?: Buffer | string;
  /** Deflate (method 8) instead of storing (method 0). */
  deflate?: boolean;
  /** Overrides the uncompressed size written in both headers (a lie, if it differs). */
  declaredSize?: number;
  /** Unix mode with type bits; written to the external attributes, made-by Unix. */
  unixMode?: number;
  /** A different name for the local header only. */
  localName?: string;
}

/** Writes a zip byte by byte (APPNOTE 4.3.7, 4.3.12, 4.3.16), with no validation at all. */
export function craftZip(entries: readonly RawZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name, 'utf8');
    const localName = e.localName === undefined ? name : Buffer.from(e.localName, 'utf8');
    const raw = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    const stored = e.deflate === true ? deflateRawSync(raw) : raw;
    const method = e.deflate === true ? 8 : 0;
    const size = e.declaredSize ?? raw.length;
    const crc = crc32(raw);
    const flags = 0x0800; // names are UTF-8

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x21, 12); // date: 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(localName.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, localName, stored);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(stored.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((e.unixMode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + localName.length + stored.length;
  }
  const directory = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(directory.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, eocd]);
}
