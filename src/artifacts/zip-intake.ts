/**
 * Zip intake: checks a deployment or layer zip against Lambda's limits and against hostile
 * archives, and extracts it safely. yauzl parses; this module decides what is allowed.
 *
 * Two passes over the archive, which is in memory (at most maxZipBytes):
 *  1. scan: read the central directory (plus symlink targets, which are entry data), check
 *     names, types, duplicates, declared sizes, local headers and where every link lands;
 *  2. extract: inflate each file into a fresh directory, counting the real bytes, so an
 *     archive whose declared sizes lie is stopped as soon as it inflates past them.
 * Nothing is written before the scan has passed.
 *
 * Decisions:
 * - Duplicate entry names are refused: tools disagree on which copy wins, so "later wins"
 *   would let an archive show one file to a reviewer and run another. Repeated directory
 *   entries merge.
 * - Backslashes are refused, not translated: Linux takes them literally, so a name such as
 *   `lib\index.js` (old Windows zippers) would never be what the author meant.
 * - `..` is allowed only where it stays inside (`a/../b` is `b`).
 * - Nothing is extracted beneath a symlink or file entry, so writes never pass through a link.
 * - Symlink targets must be relative and resolve inside the root, following the archive's
 *   own links as the kernel would (a lexical check alone is fooled by `l -> .` chains).
 * - Unix modes are read only from archives made on Unix or macOS; other hosts give 0o644.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { fromBufferPromise, getFileNameLowLevel, type Entry, type ZipFile } from 'yauzl';
import {
  InvalidParameterValueException,
  PlatformError,
  RequestTooLargeException,
  ServiceException,
} from '../errors/index.ts';
import { lambdaArtifactLimits, type ArtifactLimits } from './types.ts';

/** What the scan learned; both numbers are verified against the real bytes on extraction. */
export interface ZipMeasurement {
  /** Entries in the central directory (directories included). */
  entryCount: number;
  /** Sum of the entries' uncompressed sizes. */
  unzippedSizeBytes: number;
}

/** Lambda's own wording (CreateFunction / UpdateFunctionCode with a broken zip). */
export const couldNotUnzipMessage =
  'Could not unzip uploaded file. Please check your file, then try to upload again.';

type EntryKind = 'file' | 'directory' | 'symlink';

interface PlannedEntry {
  readonly entry: Entry;
  /** The name as stored, for error messages. */
  readonly name: string;
  /** Normalized relative path ('a/b/c'), never empty, never escaping. */
  readonly path: string;
  readonly kind: EntryKind;
  /** 0o755 or 0o644 for files, 0o755 for directories. */
  readonly mode: number;
  readonly linkTarget: string;
}

interface ScanResult extends ZipMeasurement {
  readonly entries: readonly PlannedEntry[];
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const HOST_UNIX = 3;
const HOST_OSX = 19;
const DOS_DIRECTORY_ATTRIBUTE = 0x10;
/** Linux NAME_MAX and PATH_MAX. */
const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 4096;
/** Linux follows at most 40 links per lookup (ELOOP). */
const MAX_LINK_HOPS = 40;
const WRITE_CONCURRENCY = 8;
/** Entries up to this size are inflated in memory and written at once. */
const BUFFERED_ENTRY_BYTES = 1024 * 1024;
/** System errors caused by what the archive asks for, rather than by our disk. */
const CONTENT_ERROR_CODES = new Set(['EEXIST', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'ELOOP']);

/** SHA-256 of the bytes, as AWS's CodeSha256 (base64) and as hex for file names. */
export function sha256Of(bytes: Uint8Array): { sha256Hex: string; sha256Base64: string } {
  const digest = createHash('sha256').update(bytes).digest();
  return { sha256Hex: digest.toString('hex'), sha256Base64: digest.toString('base64') };
}

export function zippedTooLarge(limits: ArtifactLimits): RequestTooLargeException {
  // Lambda says "Request must be smaller than 69905067 bytes for the <Op> operation", about
  // the base64 JSON request; that belongs to the HTTP layer. Here we speak of the zip itself.
  return new RequestTooLargeException(`Zipped size must be smaller than ${limits.maxZipBytes} bytes`);
}

export function unzippedTooLarge(limits: ArtifactLimits): InvalidParameterValueException {
  return new InvalidParameterValueException(`Unzipped size must be smaller than ${limits.maxUnzippedBytes} bytes`);
}

/**
 * Every check that needs no disk: size limits, corrupt archives, entry names, types,
 * duplicates, declared sizes, symlink targets. Layer zips go through the same gate.
 */
export async function validateAndMeasureZip(
  zip: Buffer,
  limits: ArtifactLimits = lambdaArtifactLimits,
): Promise<ZipMeasurement> {
  return withZip(zip, limits, async (zipfile) => {
    const { entryCount, unzippedSizeBytes } = await scan(zipfile, limits);
    return { entryCount, unzippedSizeBytes }; // not the plan: its entries need the open zip
  });
}

/**
 * Validates, then extracts into `destDir`, which must not exist yet (its parent must).
 * On failure `destDir` may hold a partial tree: the caller extracts into a private temp
 * dir and removes it. Files get 0o755 when the owner-execute bit is set, else 0o644.
 */
export async function extractZip(
  zip: Buffer,
  destDir: string,
  limits: ArtifactLimits = lambdaArtifactLimits,
): Promise<ZipMeasurement> {
  return withZip(zip, limits, async (zipfile) => {
    const plan = await scan(zipfile, limits);
    await diskStep(() => fs.mkdir(destDir, { mode: 0o755 }));
    await writeTree(zipfile, plan, destDir, limits);
    await diskStep(() => fs.chmod(destDir, 0o755));
    return { entryCount: plan.entryCount, unzippedSizeBytes: plan.unzippedSizeBytes };
  });
}

async function withZip<T>(
  zip: Buffer,
  limits: ArtifactLimits,
  use: (zipfile: ZipFile) => Promise<T>,
): Promise<T> {
  if (zip.length > limits.maxZipBytes) throw zippedTooLarge(limits);
  if (zip.length === 0) throw unzipError(new Error('empty file'));
  let zipfile: ZipFile;
  try {
    zipfile = await fromBufferPromise(zip, {
      lazyEntries: true,
      // Names are decoded and judged here, so the error can name the entry.
      decodeStrings: false,
      validateEntrySizes: true,
      strictFileNames: true,
    });
  } catch (err) {
    throw unzipError(err);
  }
  try {
    return await use(zipfile);
  } finally {
    // Safe: every read has settled by now (use() awaits all of its streams).
    zipfile.close();
  }
}

async function scan(zipfile: ZipFile, limits: ArtifactLimits): Promise<ScanResult> {
  // The count comes from the end-of-central-directory record: refuse before reading any.
  if (zipfile.entryCount > limits.maxEntries) {
    throw new InvalidParameterValueException(
      `Zip file must contain at most ${limits.maxEntries} entries (found ${zipfile.entryCount})`,
    );
  }
  const byPath = new Map<string, PlannedEntry>();
  let declaredBytes = 0;
  try {
    for await (const entry of zipfile.eachEntry()) {
      const flags = entry.generalPurposeBitFlag;
      const name = getFileNameLowLevel(flags, entry.fileNameRaw, entry.extraFields, true);
      if (entry.isEncrypted()) throw invalidEntry(name, 'encrypted entries are not supported');
      if (!entry.canDecodeFileData()) {
        throw invalidEntry(name, `compression method ${entry.compressionMethod} is not supported`);
      }
      declaredBytes += entry.uncompressedSize;
      if (declaredBytes > limits.maxUnzippedBytes) throw unzippedTooLarge(limits);
      const relPath = normalizeEntryPath(name);
      const kind = entryKind(entry, name);
      if (relPath === '') {
        if (kind === 'directory') continue; // "./" is the root itself
        throw invalidEntry(name, 'the path is empty');
      }
      const previous = byPath.get(relPath);
      if (previous !== undefined) {
        if (previous.kind === 'directory' && kind === 'directory') continue;
        throw new InvalidParameterValueException(
          `Duplicate entry ${JSON.stringify(name)} in zip file (same path as ${JSON.stringify(previous.name)})`,
        );
      }
      await checkLocalHeader(zipfile, entry, name);
      const linkTarget = kind === 'symlink' ? await readLinkTarget(zipfile, entry, name) : '';
      const mode = kind === 'file' && (unixMode(entry) & 0o100) === 0 ? 0o644 : 0o755;
      byPath.set(relPath, { entry, name, path: relPath, kind, mode, linkTarget });
    }
  } catch (err) {
    throw err instanceof PlatformError ? err : unzipError(err);
  }
  checkParentsAreDirectories(byPath);
  checkLinksStayInside(byPath);
  return { entries: [...byPath.values()], entryCount: zipfile.entryCount, unzippedSizeBytes: declaredBytes };
}

/** The local header must carry the central directory's name, or tools would disagree. */
async function checkLocalHeader(zipfile: ZipFile, entry: Entry, name: string): Promise<void> {
  const local = await zipfile.readLocalFileHeaderPromise(entry);
  if (!local.fileName.equals(entry.fileNameRaw)) {
    throw invalidEntry(name, 'its local file header names a different file');
  }
}

/** Normalizes an entry name to 'a/b/c' ('' for the root), refusing anything that escapes. */
export function normalizeEntryPath(name: string): string {
  if (name.includes('\0')) throw invalidEntry(name, 'entry names must not contain NUL characters');
  if (name.includes('\\')) throw invalidEntry(name, 'backslashes are not allowed in entry names');
  if (/^[a-zA-Z]:/.test(name)) throw invalidEntry(name, 'drive-letter paths are not allowed');
  if (name.startsWith('/')) throw invalidEntry(name, 'absolute paths are not allowed');
  const segments: string[] = [];
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.length === 0) throw invalidEntry(name, 'the path escapes the archive root');
      segments.pop();
      continue;
    }
    if (Buffer.byteLength(segment) > MAX_NAME_BYTES) {
      throw invalidEntry(name, `a path component is longer than ${MAX_NAME_BYTES} bytes`);
    }
    segments.push(segment);
  }
  const relPath = segments.join('/');
  if (Buffer.byteLength(relPath) >= MAX_PATH_BYTES) {
    throw invalidEntry(name, `the path is longer than ${MAX_PATH_BYTES - 1} bytes`);
  }
  return relPath;
}

function unixMode(entry: Entry): number {
  const host = entry.versionMadeBy >>> 8;
  if (host !== HOST_UNIX && host !== HOST_OSX) return 0;
  return (entry.externalFileAttributes >>> 16) & 0xffff;
}

function entryKind(entry: Entry, name: string): EntryKind {
  const type = unixMode(entry) & S_IFMT;
  if (name.endsWith('/') || type === S_IFDIR) return 'directory';
  if (type === 0 && (entry.externalFileAttributes & DOS_DIRECTORY_ATTRIBUTE) !== 0) return 'directory';
  if (type === S_IFLNK) return 'symlink';
  if (type === S_IFREG || type === 0) return 'file';
  throw invalidEntry(name, 'only regular files, directories and symbolic links are allowed');
}

async function readLinkTarget(zipfile: ZipFile, entry: Entry, name: string): Promise<string> {
  if (entry.uncompressedSize >= MAX_PATH_BYTES) {
    throw invalidEntry(name, `the symbolic link target is longer than ${MAX_PATH_BYTES - 1} bytes`);
  }
  const stream = await zipfile.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  // yauzl's size validation ends the stream with an error past the declared size.
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  const target = Buffer.concat(chunks).toString('utf8');
  if (target === '' || target.includes('\0')) {
    throw invalidEntry(name, 'the symbolic link target is empty or holds NUL characters');
  }
  return target;
}

function checkParentsAreDirectories(byPath: ReadonlyMap<string, PlannedEntry>): void {
  for (const planned of byPath.values()) {
    const segments = planned.path.split('/');
    for (let depth = 1; depth < segments.length; depth++) {
      const parent = byPath.get(segments.slice(0, depth).join('/'));
      if (parent !== undefined && parent.kind !== 'directory') {
        throw invalidEntry(
          planned.name,
          `its parent ${JSON.stringify(parent.name)} is a ${parent.kind === 'symlink' ? 'symbolic link' : 'file'}, not a directory`,
        );
      }
    }
  }
}

function checkLinksStayInside(byPath: ReadonlyMap<string, PlannedEntry>): void {
  const links = new Map<string, string>();
  for (const planned of byPath.values()) {
    if (planned.kind === 'symlink') links.set(planned.path, planned.linkTarget);
  }
  for (const [linkPath, target] of links) {
    if (!resolvesInside(linkPath, target, links)) {
      throw invalidEntry(
        byPath.get(linkPath)?.name ?? linkPath,
        `the symbolic link target ${JSON.stringify(target)} points outside the archive`,
      );
    }
  }
}

/**
 * Walks `target` from the link's directory the way the kernel would once the tree is on
 * disk, substituting the archive's own links as it meets them. False if the walk leaves
 * the root, meets an absolute target, or loops.
 */
function resolvesInside(linkPath: string, target: string, links: ReadonlyMap<string, string>): boolean {
  if (target.startsWith('/')) return false;
  const at = linkPath.split('/').slice(0, -1);
  const pending = target.split('/').reverse(); // a stack: next segment last
  let hops = 0;
  while (pending.length > 0) {
    const segment = pending.pop() as string;
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (at.length === 0) return false;
      at.pop();
      continue;
    }
    at.push(segment);
    const next = links.get(at.join('/'));
    if (next === undefined) continue;
    if (++hops > MAX_LINK_HOPS || next.startsWith('/')) return false;
    at.pop();
    for (const s of next.split('/').reverse()) pending.push(s);
  }
  return true;
}

async function writeTree(
  zipfile: ZipFile,
  plan: ScanResult,
  destDir: string,
  limits: ArtifactLimits,
): Promise<void> {
  // Directories first, parents before children; no link exists yet, so nothing is followed.
  const dirs = new Set<string>();
  for (const planned of plan.entries) {
    const segments = planned.path.split('/');
    const depth = planned.kind === 'directory' ? segments.length : segments.length - 1;
    for (let d = 1; d <= depth; d++) dirs.add(segments.slice(0, d).join('/'));
  }
  const ordered = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length);
  for (const dir of ordered) {
    const abs = path.join(destDir, dir);
    await diskStep(async () => {
      await fs.mkdir(abs, { mode: 0o755 });
      await fs.chmod(abs, 0o755); // exact, whatever the umask
    }, dir);
  }

  const files = plan.entries.filter((p) => p.kind === 'file');
  const budget = { inflatedBytes: 0 };
  const abort = new AbortController();
  let failure: PlatformError | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < files.length) {
      const planned = files[next++];
      try {
        await writeFile(zipfile, planned, destDir, budget, limits, abort.signal);
      } catch (err) {
        if (failure === undefined) {
          failure = classify(err, planned.name);
          abort.abort();
        }
      }
    }
  };
  // Wait for every worker, so the caller never removes a dir that is still being written.
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, files.length) }, worker));
  if (failure !== undefined) throw failure;

  // Links last: every check above ran on a tree that had none.
  for (const planned of plan.entries) {
    if (planned.kind !== 'symlink') continue;
    await diskStep(() => fs.symlink(planned.linkTarget, path.join(destDir, planned.path)), planned.name);
  }
}

async function writeFile(
  zipfile: ZipFile,
  planned: PlannedEntry,
  destDir: string,
  budget: { inflatedBytes: number },
  limits: ArtifactLimits,
  signal: AbortSignal,
): Promise<void> {
  const target = path.join(destDir, planned.path);
  const counter = new InflateCounter(planned, budget, limits);
  if (planned.entry.uncompressedSize <= BUFFERED_ENTRY_BYTES) {
    // Most files in a package are small: inflate in memory, then one write instead of a
    // stream pipeline per file; a refused entry never reaches the disk.
    const chunks: Buffer[] = [];
    const source = await zipfile.openReadStreamPromise(planned.entry);
    for await (const chunk of source as AsyncIterable<Buffer>) {
      counter.take(chunk); // a throw here destroys the source
      chunks.push(chunk);
    }
    counter.finish();
    signal.throwIfAborted();
    // 'wx': O_CREAT|O_EXCL, so an existing path (a link included) is never written through.
    const handle = await fs.open(target, 'wx', planned.mode);
    try {
      await handle.chmod(planned.mode); // exact, whatever the umask
      await handle.writeFile(Buffer.concat(chunks));
    } finally {
      await handle.close();
    }
    return;
  }
  const handle = await fs.open(target, 'wx', planned.mode);
  let source: Readable;
  try {
    await handle.chmod(planned.mode);
    source = await zipfile.openReadStreamPromise(planned.entry);
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  // No await between opening the entry stream and piping it: an inflate error emitted
  // before pipeline() attaches its listener would be an uncaught 'error' event.
  // The write stream closes the handle when it finishes or fails.
  await pipeline(source, counter.asTransform(), handle.createWriteStream(), { signal });
}

/**
 * Counts the real inflated bytes of one entry: throws the moment the entry passes its
 * declared size or the archive passes the unzipped budget, and checks the CRC-32 at the end
 * (yauzl does not). yauzl's own size check runs upstream; this one does not depend on it.
 */
class InflateCounter {
  readonly #planned: PlannedEntry;
  readonly #budget: { inflatedBytes: number };
  readonly #limits: ArtifactLimits;
  #bytes = 0;
  #crc = 0;

  constructor(planned: PlannedEntry, budget: { inflatedBytes: number }, limits: ArtifactLimits) {
    this.#planned = planned;
    this.#budget = budget;
    this.#limits = limits;
  }

  take(chunk: Buffer): void {
    this.#bytes += chunk.length;
    this.#budget.inflatedBytes += chunk.length;
    const { entry, name } = this.#planned;
    if (this.#bytes > entry.uncompressedSize) {
      throw new Error(`${name}: inflated past its declared size of ${entry.uncompressedSize} bytes`);
    }
    if (this.#budget.inflatedBytes > this.#limits.maxUnzippedBytes) throw unzippedTooLarge(this.#limits);
    this.#crc = crc32(chunk, this.#crc);
  }

  finish(): void {
    const { entry, name } = this.#planned;
    if (this.#bytes !== entry.uncompressedSize) {
      throw new Error(`${name}: inflated to ${this.#bytes} bytes, declared ${entry.uncompressedSize}`);
    }
    if (this.#crc !== entry.crc32) throw new Error(`${name}: CRC-32 mismatch`);
  }

  asTransform(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        const err = attempt(() => this.take(chunk));
        if (err !== null) callback(err);
        else callback(null, chunk);
      },
      flush: (callback: TransformCallback) => callback(attempt(() => this.finish())),
    });
  }
}

function attempt(step: () => void): Error | null {
  try {
    step();
    return null;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** Runs one filesystem step of extraction and types its failure. */
async function diskStep<T>(step: () => Promise<T>, entryName?: string): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw classify(err, entryName);
  }
}

/**
 * Our errors pass through; system errors the archive provoked name the entry; other system
 * errors are ours (disk full, permissions); anything else came from parsing or inflating.
 */
function classify(err: unknown, entryName?: string): PlatformError {
  if (err instanceof PlatformError) return err;
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string') {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (entryName !== undefined && CONTENT_ERROR_CODES.has(code)) {
      return invalidEntry(entryName, `it cannot be extracted (${code})`, err);
    }
    return new ServiceException('Could not extract the zip file to disk', { cause: err });
  }
  return unzipError(err);
}

function invalidEntry(name: string, reason: string, cause?: unknown): InvalidParameterValueException {
  return new InvalidParameterValueException(
    `Invalid entry ${JSON.stringify(name)} in zip file: ${reason}`,
    cause === undefined ? undefined : { cause },
  );
}

function unzipError(cause: unknown): InvalidParameterValueException {
  return new InvalidParameterValueException(couldNotUnzipMessage, { cause });
}
