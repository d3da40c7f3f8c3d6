/**
 * The embedded OptMerger: a function's layers merged into one read-only tree, the /opt its
 * environments see.
 *
 *   <rootDir>/<sha256 of the ordered layer digests>/   a merged tree
 *   <rootDir>/.tmp/                                    work dirs, renamed into place when complete
 *
 * Lambda extracts a function's layers into /opt in order, so a later layer overrides an
 * earlier one file by file; so does this, entry by entry: a file or link replaces whatever
 * was at its path, a directory merges into a directory and replaces a file or link.
 * Files are hard links to the layers' extracted trees (no copy, same modes), falling back to
 * copies when the kernel refuses a link (another device, protected_hardlinks, link count).
 * Links are recreated with their targets; a link that, through the links of other layers,
 * would resolve outside the merged tree is left out (each layer's own links were checked to
 * stay inside that layer when it was published). Nothing is ever written through a link.
 *
 * Each tree is built once: content-addressed by the ordered digests, built in a work dir and
 * renamed into place (a reader sees a whole tree or none; of two concurrent builders the
 * second one's copy is discarded), found on disk by later runs, and remembered in memory.
 * A single layer needs no merge: its extracted tree is the view.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { ServiceException } from '../errors/platform-errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { LayerTree, OptMerger } from './types.ts';

export interface FileOptMergerOptions {
  /** e.g. `<dataDir>/artifacts/opt`; created if missing. */
  rootDir: string;
  logger: Logger;
}

/** Work dirs older than this were left by a crashed process; younger ones may be live. */
const STALE_TMP_MS = 60 * 60 * 1000;
/** The kernel's limit on links followed in one lookup (MAXSYMLINKS). */
const MAX_LINK_HOPS = 40;
/** link(2) failures that a copy gets around. */
const COPY_INSTEAD = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP']);

export class FileOptMerger implements OptMerger {
  readonly #rootDir: string;
  readonly #logger: Logger;
  /** Built (or being built) trees by key: each is built at most once per process. */
  readonly #trees = new Map<string, Promise<string>>();
  #ready: Promise<void> | undefined;

  constructor(options: FileOptMergerOptions) {
    this.#rootDir = path.resolve(options.rootDir);
    this.#logger = options.logger;
  }

  /** The key of a merge: SHA-256 (hex) of the layers' digests in order. */
  static keyOf(trees: readonly LayerTree[]): string {
    return createHash('sha256').update(trees.map((t) => t.sha256Hex).join('\n')).digest('hex');
  }

  merge(trees: readonly LayerTree[]): Promise<string> {
    if (trees.length === 0) return Promise.reject(new Error('merge() needs at least one layer'));
    if (trees.length === 1) return Promise.resolve(trees[0]!.dir);
    const key = FileOptMerger.keyOf(trees);
    let pending = this.#trees.get(key);
    if (!pending) {
      pending = this.#build(key, trees);
      this.#trees.set(key, pending);
      // A failure is not remembered: the next environment start tries again.
      pending.catch(() => this.#trees.delete(key));
    }
    return pending;
  }

  async #build(key: string, trees: readonly LayerTree[]): Promise<string> {
    const target = path.join(this.#rootDir, key);
    if (await isDirectory(target)) return target; // built by an earlier run
    await this.#init();
    const workDir = await step('create a work directory', () => fs.mkdtemp(path.join(this.#rootDir, '.tmp', `${key.slice(0, 16)}-`)));
    try {
      const tree = path.join(workDir, 'opt');
      await step('build the merged tree', async () => {
        await makeDir(tree);
        for (const layer of trees) await overlay(layer.dir, tree);
      });
      const dropped = await step('check the links of the merged tree', () => dropEscapingLinks(tree));
      for (const link of dropped) {
        this.#logger.warn('layer link left out of /opt: it resolves outside the merged layers', { key, link });
      }
      await step('publish the merged tree', async () => {
        try {
          await fs.rename(tree, target);
        } catch (err) {
          const code = errorCode(err);
          // Another builder published the same key first; its tree is identical.
          if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
        }
      });
      this.#logger.debug('layers merged', { key, layers: trees.length });
      return target;
    } finally {
      await fs.rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  #init(): Promise<void> {
    this.#ready ??= this.#prepareRoot().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async #prepareRoot(): Promise<void> {
    const tmpRoot = path.join(this.#rootDir, '.tmp');
    await step('create the merged layers directory', () => fs.mkdir(tmpRoot, { recursive: true, mode: 0o755 }));
    for (const name of await fs.readdir(tmpRoot).catch(() => [] as string[])) {
      const stale = path.join(tmpRoot, name);
      const stats = await fs.lstat(stale).catch(() => undefined);
      if (stats !== undefined && Date.now() - stats.mtimeMs > STALE_TMP_MS) {
        await fs.rm(stale, { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }
}

/** Lays the tree at `src` over the tree at `dst`; entries of `src` win. */
async function overlay(src: string, dst: string): Promise<void> {
  for (const entry of await fs.readdir(src, { withFileTypes: true })) {
    const from = path.join(src, entry.name);
    const to = path.join(dst, entry.name);
    // lstat: a link already at `to` is replaced, never followed.
    const existing = await fs.lstat(to).catch(() => undefined);
    if (entry.isDirectory()) {
      if (existing !== undefined && !existing.isDirectory()) await fs.rm(to, { force: true });
      if (existing === undefined || !existing.isDirectory()) await makeDir(to);
      await overlay(from, to);
      continue;
    }
    if (existing !== undefined) await fs.rm(to, { recursive: true, force: true });
    if (entry.isSymbolicLink()) await fs.symlink(await fs.readlink(from), to);
    else if (entry.isFile()) await linkOrCopy(from, to);
    // Extracted zips hold nothing else (no devices, fifos or sockets).
  }
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to);
  } catch (err) {
    if (!COPY_INSTEAD.has(errorCode(err) ?? '')) throw err;
    await fs.copyFile(from, to, constants.COPYFILE_EXCL);
    await fs.chmod(to, (await fs.stat(from)).mode & 0o7777);
  }
}

async function makeDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { mode: 0o755 });
  await fs.chmod(dir, 0o755); // exact, whatever the umask
}

/** Removes the links under `root` that resolve outside it; returns their paths relative to root. */
export async function dropEscapingLinks(root: string): Promise<string[]> {
  const links: string[] = [];
  const collect = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isSymbolicLink()) links.push(p);
      else if (entry.isDirectory()) await collect(p);
    }
  };
  await collect(root);
  const escaping: string[] = [];
  // Decide on the complete tree first, then remove: removing one link changes where others lead.
  for (const link of links) {
    if (!(await staysInside(root, link))) escaping.push(link);
  }
  for (const link of escaping) await fs.rm(link, { force: true });
  return escaping.map((link) => path.relative(root, link));
}

/**
 * Follows `link` as the kernel would, with `root` as the top of the tree: false if the
 * lookup reaches a path outside `root`. A lookup that stops (a missing component, a file
 * used as a directory, too many links) reaches nothing, so it stays inside.
 */
export async function staysInside(root: string, link: string): Promise<boolean> {
  const at = path.relative(root, path.dirname(link)).split(path.sep).filter((p) => p !== '');
  let rest = [path.basename(link)];
  let hops = 0;
  while (rest.length > 0) {
    const part = rest.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (at.length === 0) return false;
      at.pop();
      continue;
    }
    const here = path.join(root, ...at, part);
    const stats = await fs.lstat(here).catch(() => undefined);
    if (stats === undefined) return true;
    if (stats.isSymbolicLink()) {
      if (++hops > MAX_LINK_HOPS) return true;
      const target = await fs.readlink(here);
      if (path.isAbsolute(target)) return false;
      // A relative target resolves from the link's own directory: `at` stays.
      rest = [...target.split('/'), ...rest];
      continue;
    }
    at.push(part);
  }
  return true;
}

async function step<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new ServiceException(`Nimbus could not ${what} for the function's layers`, { cause: err });
  }
}

async function isDirectory(p: string): Promise<boolean> {
  const stats = await fs.stat(p).catch(() => undefined);
  return stats?.isDirectory() ?? false;
}

function errorCode(err: unknown): string | undefined {
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}
