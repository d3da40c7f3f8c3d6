/**
 * The embedded artifact store: content-addressed files under one root directory.
 *
 *   <rootDir>/zips/<hex>.zip   the uploaded bytes (GetFunction serves them)
 *   <rootDir>/code/<hex>/      the extracted tree (the sandbox mounts it read-only)
 *   <rootDir>/tmp/             private work dirs; renamed into place when complete
 *
 * Publishing is a rename, so a reader sees a whole tree or none. The zip is published
 * before the tree: a crash in between leaves a zip whose tree codeDir() rebuilds, never a
 * tree without its zip. Two writers of the same digest (in this process or another) both
 * extract; the second rename finds the dir there and its copy is discarded.
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { ResourceNotFoundException, ServiceException } from '../errors/index.ts';
import { lambdaArtifactLimits, type ArtifactLimits, type ArtifactStore, type CodeArtifact } from './types.ts';
import {
  extractZip,
  sha256Of,
  validateAndMeasureZip,
  zippedTooLarge,
  type ZipMeasurement,
} from './zip-intake.ts';

export interface FileArtifactStoreOptions {
  /** e.g. `<dataDir>/artifacts`; created if missing. */
  rootDir: string;
  limits?: ArtifactLimits;
}

const HEX_DIGEST = /^[0-9a-f]{64}$/;
/** Work dirs older than this were left by a crashed process; younger ones may be live. */
const STALE_TMP_MS = 60 * 60 * 1000;

export class FileArtifactStore implements ArtifactStore {
  readonly #rootDir: string;
  readonly #limits: ArtifactLimits;
  /** Trees known to be on disk: codeDir() answers these without I/O. */
  readonly #present = new Set<string>();
  /** Artifacts stored or seen by this process, so a re-put skips even the scan. */
  readonly #artifacts = new Map<string, CodeArtifact>();
  /** One extraction per digest at a time in this process. */
  readonly #extracting = new Map<string, Promise<ZipMeasurement>>();
  #ready: Promise<void> | undefined;

  constructor(options: FileArtifactStoreOptions) {
    this.#rootDir = path.resolve(options.rootDir);
    this.#limits = Object.freeze({ ...(options.limits ?? lambdaArtifactLimits) });
  }

  async putZip(zip: Buffer): Promise<CodeArtifact> {
    if (zip.length > this.#limits.maxZipBytes) throw zippedTooLarge(this.#limits);
    const { sha256Hex, sha256Base64 } = sha256Of(zip);
    const known = this.#artifacts.get(sha256Hex);
    if (known !== undefined && this.#present.has(sha256Hex)) return known;

    await this.#init();
    let measured: ZipMeasurement;
    if ((await isDirectory(this.#codePath(sha256Hex))) && (await exists(this.#zipPath(sha256Hex)))) {
      // Stored before (maybe by an earlier run): same bytes, so only measure them again.
      measured = await validateAndMeasureZip(zip, this.#limits);
    } else {
      measured = await this.#extractOnce(sha256Hex, zip, true);
    }
    const artifact: CodeArtifact = {
      sha256Base64,
      sha256Hex,
      zipSizeBytes: zip.length,
      unzippedSizeBytes: measured.unzippedSizeBytes,
    };
    this.#artifacts.set(sha256Hex, artifact);
    this.#present.add(sha256Hex);
    return artifact;
  }

  /**
   * Called on every environment start. After the first call for a digest it does no I/O,
   * so a tree deleted under a running store is noticed only by the next process.
   */
  async codeDir(sha256Hex: string): Promise<string> {
    const codePath = this.#codePath(sha256Hex); // validates the digest
    if (this.#present.has(sha256Hex)) return codePath;
    await this.#init();
    // A put of these bytes may be publishing right now; its outcome decides what is there.
    await this.#extracting.get(sha256Hex)?.catch(() => undefined);
    if (!(await isDirectory(codePath))) {
      const zip = await this.readZip(sha256Hex);
      if (sha256Of(zip).sha256Hex !== sha256Hex) {
        throw new ServiceException(`Stored zip for code ${sha256Hex} does not match its digest`);
      }
      await this.#extractOnce(sha256Hex, zip, false);
    }
    this.#present.add(sha256Hex);
    return codePath;
  }

  async readZip(sha256Hex: string): Promise<Buffer> {
    const zipPath = this.#zipPath(sha256Hex);
    try {
      return await fs.readFile(zipPath);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') throw notFound(sha256Hex);
      throw new ServiceException(`Could not read stored zip for code ${sha256Hex}`, { cause: err });
    }
  }

  #codePath(sha256Hex: string): string {
    // The digest becomes a path: anything but 64 hex digits is unknown, never a path.
    if (!HEX_DIGEST.test(sha256Hex)) throw notFound(sha256Hex);
    return path.join(this.#rootDir, 'code', sha256Hex);
  }

  #zipPath(sha256Hex: string): string {
    if (!HEX_DIGEST.test(sha256Hex)) throw notFound(sha256Hex);
    return path.join(this.#rootDir, 'zips', `${sha256Hex}.zip`);
  }

  #extractOnce(sha256Hex: string, zip: Buffer, publishZip: boolean): Promise<ZipMeasurement> {
    const running = this.#extracting.get(sha256Hex);
    if (running !== undefined) return running;
    const work = this.#extractAndPublish(sha256Hex, zip, publishZip).finally(() => {
      this.#extracting.delete(sha256Hex);
    });
    this.#extracting.set(sha256Hex, work);
    return work;
  }

  async #extractAndPublish(sha256Hex: string, zip: Buffer, publishZip: boolean): Promise<ZipMeasurement> {
    // mkdtemp makes the work dir 0o700: nobody sees the tree before it is complete.
    const workDir = await storeStep('create a work directory', () =>
      fs.mkdtemp(path.join(this.#rootDir, 'tmp', `${sha256Hex.slice(0, 16)}-`)),
    );
    try {
      const treeDir = path.join(workDir, 'code');
      // Validation happens here, before anything is published.
      const measured = await extractZip(zip, treeDir, this.#limits);
      if (publishZip) {
        await storeStep('store the zip', async () => {
          const tmpZip = path.join(workDir, 'zip');
          await writeDurably(tmpZip, zip);
          // Replacing an existing copy is harmless: same digest, same bytes.
          await fs.rename(tmpZip, this.#zipPath(sha256Hex));
        });
      }
      await storeStep('publish the code directory', async () => {
        try {
          await fs.rename(treeDir, this.#codePath(sha256Hex));
        } catch (err) {
          const code = errorCode(err);
          // Another writer published the same digest first; its tree is identical.
          if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
        }
      });
      return measured;
    } finally {
      await fs.rm(workDir, { recursive: true, force: true });
    }
  }

  #init(): Promise<void> {
    this.#ready ??= this.#prepareRoot().catch((err: unknown) => {
      this.#ready = undefined; // let the next call try again
      throw err;
    });
    return this.#ready;
  }

  async #prepareRoot(): Promise<void> {
    await storeStep('create the artifact directories', async () => {
      for (const dir of ['code', 'zips', 'tmp']) {
        await fs.mkdir(path.join(this.#rootDir, dir), { recursive: true, mode: 0o755 });
      }
    });
    // Sweep work dirs left by a crash; recent ones may belong to a live process.
    const tmpRoot = path.join(this.#rootDir, 'tmp');
    for (const name of await fs.readdir(tmpRoot).catch(() => [] as string[])) {
      const stale = path.join(tmpRoot, name);
      const stats = await fs.lstat(stale).catch(() => undefined);
      if (stats !== undefined && Date.now() - stats.mtimeMs > STALE_TMP_MS) {
        await fs.rm(stale, { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }
}

async function writeDurably(file: string, bytes: Buffer): Promise<void> {
  const handle = await fs.open(file, 'wx', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.chmod(0o644);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Runs a step on the store's own files; a failure there is ours, not the caller's. */
async function storeStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw new ServiceException(`Artifact store could not ${what}`, { cause: err });
  }
}

async function isDirectory(p: string): Promise<boolean> {
  const stats = await fs.stat(p).catch(() => undefined);
  return stats?.isDirectory() ?? false;
}

async function exists(p: string): Promise<boolean> {
  return (await fs.stat(p).catch(() => undefined)) !== undefined;
}

function errorCode(err: unknown): string | undefined {
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}

function notFound(sha256Hex: string): ResourceNotFoundException {
  const shown = HEX_DIGEST.test(sha256Hex) ? sha256Hex : JSON.stringify(sha256Hex.slice(0, 80));
  return new ResourceNotFoundException(`Code artifact not found: ${shown}`);
}
