/**
 * FileOptMerger: layers merged in order into one tree (later ones win entry by entry),
 * files hard-linked with their modes (copied across devices), links kept only when they
 * stay inside the merged tree, and each merge built once: atomically, cached in memory,
 * found on disk by a new process, shared by concurrent callers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, writeFile, symlink, readFile, readlink, lstat, stat, rm, readdir, utimes, chmod } from 'node:fs/promises';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileOptMerger, dropEscapingLinks, staysInside } from '../../src/layers/merged-opt.ts';
import type { LayerTree } from '../../src/layers/types.ts';
import { createLogger, type Logger } from '../../src/logging/logger.ts';

let tmp: string;
const warnings: string[] = [];
const logger: Logger = createLogger({ level: 'warn', format: 'json', write: (line) => warnings.push(line) });

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'nimbus-merge-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

type Entry = string | { link: string } | { file: string; mode: number };

/** Writes a layer's extracted tree; the digest is only an identity for the merge key. */
async function tree(name: string, entries: Record<string, Entry>, root = tmp): Promise<LayerTree> {
  const dir = path.join(root, 'layers', name);
  await mkdir(dir, { recursive: true });
  for (const [rel, entry] of Object.entries(entries)) {
    const p = path.join(dir, rel);
    await mkdir(path.dirname(p), { recursive: true });
    if (typeof entry === 'string') await writeFile(p, entry);
    else if ('link' in entry) await symlink(entry.link, p);
    else {
      await writeFile(p, entry.file);
      await chmod(p, entry.mode);
    }
  }
  return { sha256Hex: createHash('sha256').update(name).digest('hex'), dir };
}

const merger = (rootDir = path.join(tmp, 'opt')) => new FileOptMerger({ rootDir, logger });

test('later layers override earlier ones file by file; directories merge; files and links replace whole entries', async () => {
  const a = await tree('override-a', {
    'conf/value.txt': 'A',
    'conf/only-a.txt': 'a',
    'nodejs/node_modules/pkg/index.js': 'A',
    'dir-becomes-file/inner.txt': 'inner',
    'file-becomes-dir': 'a file',
    'link-becomes-file': { link: 'conf/value.txt' },
  });
  const b = await tree('override-b', {
    'conf/value.txt': 'B',
    'conf/only-b.txt': 'b',
    'dir-becomes-file': 'now a file',
    'file-becomes-dir/inner.txt': 'now a dir',
    'link-becomes-file': 'plain',
  });
  const c = await tree('override-c', { 'conf/value.txt': 'C', 'nodejs/node_modules/pkg/index.js': { link: '../../../conf/value.txt' } });

  const dir = await merger().merge([a, b, c]);
  assert.equal(path.dirname(dir), path.join(tmp, 'opt'));
  assert.equal(path.basename(dir), FileOptMerger.keyOf([a, b, c]));
  const read = (rel: string) => readFile(path.join(dir, rel), 'utf8');
  assert.equal(await read('conf/value.txt'), 'C');
  assert.equal(await read('conf/only-a.txt'), 'a');
  assert.equal(await read('conf/only-b.txt'), 'b');
  assert.equal(await read('dir-becomes-file'), 'now a file');
  assert.equal(await read('file-becomes-dir/inner.txt'), 'now a dir');
  assert.equal((await lstat(path.join(dir, 'link-becomes-file'))).isSymbolicLink(), false);
  assert.equal(await read('link-becomes-file'), 'plain');
  assert.equal(await readlink(path.join(dir, 'nodejs/node_modules/pkg/index.js')), '../../../conf/value.txt');
  assert.equal(await read('nodejs/node_modules/pkg/index.js'), 'C');
  // The layers' own trees are untouched.
  assert.equal(await readFile(path.join(a.dir, 'conf/value.txt'), 'utf8'), 'A');
  assert.equal(await readFile(path.join(a.dir, 'dir-becomes-file/inner.txt'), 'utf8'), 'inner');

  // The other order gives the other winner, in a tree of its own.
  const reversed = await merger().merge([c, b, a]);
  assert.notEqual(reversed, dir);
  assert.equal(await readFile(path.join(reversed, 'conf/value.txt'), 'utf8'), 'A');
  assert.equal(await readFile(path.join(reversed, 'nodejs/node_modules/pkg/index.js'), 'utf8'), 'A');
});

test('files are hard links with the layer modes; directories are 0755', async () => {
  const a = await tree('modes-a', { 'bin/tool': { file: '#!/bin/sh\necho hi\n', mode: 0o755 }, 'lib/data.txt': { file: 'x', mode: 0o644 } });
  const b = await tree('modes-b', { 'bin/other': { file: 'y', mode: 0o700 } });
  const dir = await merger().merge([a, b]);
  const tool = await stat(path.join(dir, 'bin/tool'));
  assert.equal(tool.mode & 0o777, 0o755);
  assert.equal(tool.ino, (await stat(path.join(a.dir, 'bin/tool'))).ino, 'a hard link, not a copy');
  assert.equal((await stat(path.join(dir, 'lib/data.txt'))).mode & 0o777, 0o644);
  assert.equal((await stat(path.join(dir, 'bin/other'))).mode & 0o777, 0o700);
  assert.equal((await stat(path.join(dir, 'bin'))).mode & 0o777, 0o755);
  assert.equal((await stat(dir)).mode & 0o777, 0o755);
});

const shm = '/dev/shm';
const crossDevice = (() => {
  try {
    return statSync(shm).isDirectory() && statSync(shm).dev !== statSync(os.tmpdir()).dev;
  } catch {
    return false;
  }
})();

test('across devices files are copied, with their modes', { skip: crossDevice ? false : 'no second filesystem at /dev/shm' }, async () => {
  const other = await mkdtemp(path.join(shm, 'nimbus-merge-'));
  try {
    const a = await tree('xdev-a', { 'bin/tool': { file: 'tool', mode: 0o755 }, 'x.txt': 'a' }, other);
    const b = await tree('xdev-b', { 'x.txt': 'b' }, other);
    const dir = await merger().merge([a, b]);
    const tool = await stat(path.join(dir, 'bin/tool'));
    assert.notEqual(tool.dev, (await stat(path.join(a.dir, 'bin/tool'))).dev, 'a copy on the merge root device');
    assert.equal(tool.mode & 0o777, 0o755);
    assert.equal(await readFile(path.join(dir, 'bin/tool'), 'utf8'), 'tool');
    assert.equal(await readFile(path.join(dir, 'x.txt'), 'utf8'), 'b');
  } finally {
    await rm(other, { recursive: true, force: true });
  }
});

test('links that stay inside are kept (dangling ones too); links that escape through another layer are left out', async () => {
  // Each layer's links stay inside that layer, as zip intake requires; merged, `out`
  // follows A's `up` (to the top) and then `..` leaves the tree.
  const a = await tree('links-a', { 'deep/x/up': { link: '../..' }, 'deep/x/file.txt': 'f', 'dir-link': { link: 'deep/x' } });
  const b = await tree('links-b', {
    'deep/x/out': { link: 'up/..' },
    'deep/x/sibling': { link: 'file.txt' },
    'deep/x/dangling': { link: 'missing/file' },
    'via-dir-link': { link: 'dir-link/file.txt' },
  });
  warnings.length = 0;
  const dir = await merger().merge([a, b]);
  await assert.rejects(lstat(path.join(dir, 'deep/x/out')), { code: 'ENOENT' });
  assert.equal(await readlink(path.join(dir, 'deep/x/up')), '../..');
  assert.equal(await readFile(path.join(dir, 'deep/x/sibling'), 'utf8'), 'f');
  assert.equal(await readlink(path.join(dir, 'deep/x/dangling')), 'missing/file');
  assert.equal(await readFile(path.join(dir, 'via-dir-link'), 'utf8'), 'f');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /layer link left out of \/opt/);
  assert.match(warnings[0]!, /"link":"deep\/x\/out"/);
});

test('staysInside follows links as the kernel does, with the tree root as the top', async () => {
  const root = path.join(tmp, 'inside');
  await mkdir(path.join(root, 'a/b'), { recursive: true });
  const link = async (rel: string, target: string) => {
    await symlink(target, path.join(root, rel));
    return path.join(root, rel);
  };
  assert.equal(await staysInside(root, await link('a/b/ok', '../../a')), true);
  assert.equal(await staysInside(root, await link('a/b/top', '../..')), true);
  assert.equal(await staysInside(root, await link('a/b/escape', '../../..')), false);
  assert.equal(await staysInside(root, await link('abs', '/etc/passwd')), false);
  assert.equal(await staysInside(root, await link('loop1', 'loop2')), true, 'a loop reaches nothing');
  await link('loop2', 'loop1');
  assert.equal(await staysInside(root, await link('through', 'a/b/top/..')), false);
  assert.equal(await staysInside(root, await link('missing-mid', 'nope/../../..')), true, 'the lookup stops at the missing component');
  assert.deepEqual((await dropEscapingLinks(root)).sort(), ['a/b/escape', 'abs', 'through']);
  assert.deepEqual((await readdir(path.join(root, 'a/b'))).sort(), ['ok', 'top']);
});

test('each merge is built once: remembered, found on disk by a new merger, shared by concurrent calls', async () => {
  const a = await tree('once-a', { 'a.txt': 'a' });
  const b = await tree('once-b', { 'b.txt': 'b' });
  const root = path.join(tmp, 'opt-once');
  const first = merger(root);
  const [x, y, z] = await Promise.all([first.merge([a, b]), first.merge([a, b]), first.merge([a, b])]);
  assert.equal(x, y);
  assert.equal(y, z);
  const ino = (await stat(x)).ino;
  assert.equal(await first.merge([a, b]), x);
  const second = merger(root);
  assert.equal(await second.merge([a, b]), x);
  assert.equal((await stat(x)).ino, ino, 'not rebuilt');
  // Nothing is left in the work area.
  assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
});

test('a single layer is its own tree; work dirs of a crashed run are swept', async () => {
  const a = await tree('single-a', { 'a.txt': 'a' });
  const root = path.join(tmp, 'opt-sweep');
  assert.equal(await merger(root).merge([a]), a.dir);
  const stale = path.join(root, '.tmp', 'left-by-a-crash');
  const fresh = path.join(root, '.tmp', 'maybe-live');
  await mkdir(stale, { recursive: true });
  await mkdir(fresh, { recursive: true });
  const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
  await utimes(stale, twoHoursAgo, twoHoursAgo);
  const b = await tree('single-b', { 'b.txt': 'b' });
  await merger(root).merge([a, b]);
  assert.deepEqual(await readdir(path.join(root, '.tmp')), ['maybe-live']);
});

test('a layer tree that vanished fails the merge with ServiceException and leaves nothing behind', async () => {
  const a = await tree('vanish-a', { 'a.txt': 'a' });
  const gone: LayerTree = { sha256Hex: 'f'.repeat(64), dir: path.join(tmp, 'layers', 'never-there') };
  const root = path.join(tmp, 'opt-fail');
  const m = merger(root);
  await assert.rejects(m.merge([a, gone]), (err: Error) => {
    assert.equal(err.name, 'ServiceException');
    assert.equal(err.message, "Nimbus could not build the merged tree for the function's layers");
    return true;
  });
  assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
  assert.deepEqual((await readdir(root)).filter((n) => n !== '.tmp'), []);
  // The failure is not remembered: once the tree is there, the merge succeeds.
  await mkdir(gone.dir, { recursive: true });
  await writeFile(path.join(gone.dir, 'b.txt'), 'b');
  const dir = await m.merge([a, gone]);
  assert.equal(await readFile(path.join(dir, 'b.txt'), 'utf8'), 'b');
});
