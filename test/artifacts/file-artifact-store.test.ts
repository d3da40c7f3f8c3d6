import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FileArtifactStore, couldNotUnzipMessage } from '../../src/artifacts/index.ts';
import type { ArtifactLimits } from '../../src/artifacts/types.ts';
import { buildZip, craftZip, symlink } from '../helpers/zip.ts';

const small: ArtifactLimits = { maxZipBytes: 64 * 1024, maxUnzippedBytes: 10_000, maxEntries: 10 };

const sampleEntries = [
  { name: 'index.js', data: 'exports.handler = async () => "hi";\n' },
  { name: 'bin/', directory: true },
  { name: 'bin/tool', data: '#!/bin/sh\necho tool\n', mode: 0o100755 },
  { name: 'node_modules/pkg/lib/deep/x.js', data: 'module.exports = 1;\n' },
  symlink('node_modules/.bin/tool', '../../bin/tool'),
];
const sampleUnzippedBytes = sampleEntries.reduce((sum, e) => sum + Buffer.byteLength(e.data ?? ''), 0);

async function sampleZip(): Promise<Buffer> {
  return buildZip(sampleEntries);
}

/** Every path under `dir`, relative, sorted; directories end in '/'. */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
    out.push(entry.isDirectory() ? `${rel}/` : rel);
  }
  return out.sort();
}

describe('FileArtifactStore', () => {
  let base: string;
  let rootDir: string;

  beforeEach(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'nimbus-artifacts-'));
    rootDir = path.join(base, 'artifacts');
  });
  afterEach(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  /** After a refusal: nothing outside rootDir, no work dirs, nothing stored. */
  async function assertNothingStored(): Promise<void> {
    const tree = await listTree(base);
    const allowed = new Set(['artifacts/', 'artifacts/code/', 'artifacts/tmp/', 'artifacts/zips/']);
    assert.deepEqual(tree.filter((p) => !allowed.has(p)), []);
  }

  it('stores a zip: CodeSha256, sizes, tree, modes, links', async () => {
    const store = new FileArtifactStore({ rootDir });
    const zip = await sampleZip();
    const artifact = await store.putZip(zip);

    const digest = createHash('sha256').update(zip).digest();
    assert.equal(artifact.sha256Base64, digest.toString('base64'));
    assert.equal(artifact.sha256Hex, digest.toString('hex'));
    assert.equal(artifact.zipSizeBytes, zip.length);
    assert.equal(artifact.unzippedSizeBytes, sampleUnzippedBytes);

    const dir = await store.codeDir(artifact.sha256Hex);
    assert.equal(dir, path.join(rootDir, 'code', artifact.sha256Hex));
    assert.equal(await fs.readFile(path.join(dir, 'node_modules/pkg/lib/deep/x.js'), 'utf8'), 'module.exports = 1;\n');
    assert.equal((await fs.stat(path.join(dir, 'bin/tool'))).mode & 0o777, 0o755);
    assert.equal((await fs.stat(path.join(dir, 'index.js'))).mode & 0o777, 0o644);
    assert.equal(await fs.readFile(path.join(dir, 'node_modules/.bin/tool'), 'utf8'), '#!/bin/sh\necho tool\n');
    assert.equal((await fs.stat(dir)).mode & 0o002, 0, 'not world-writable');
    assert.deepEqual(await store.readZip(artifact.sha256Hex), zip);
    assert.deepEqual(await fs.readdir(path.join(rootDir, 'tmp')), []);
  });

  it('stores the same bytes once and returns the same artifact', async () => {
    const store = new FileArtifactStore({ rootDir });
    const zip = await sampleZip();
    const first = await store.putZip(zip);
    const marker = path.join(rootDir, 'code', first.sha256Hex, 'index.js');
    const before = await fs.stat(marker);
    assert.deepEqual(await store.putZip(zip), first);
    // A new process over the same data dir: measured again, not extracted again.
    assert.deepEqual(await new FileArtifactStore({ rootDir }).putZip(zip), first);
    assert.equal((await fs.stat(marker)).ino, before.ino);
    assert.deepEqual(await fs.readdir(path.join(rootDir, 'code')), [first.sha256Hex]);
  });

  it('survives concurrent puts of the same bytes, in one store and across stores', async () => {
    const zip = await sampleZip();
    const store = new FileArtifactStore({ rootDir });
    const results = await Promise.all([
      store.putZip(zip),
      store.putZip(zip),
      new FileArtifactStore({ rootDir }).putZip(zip),
      new FileArtifactStore({ rootDir }).putZip(zip),
    ]);
    for (const r of results) assert.deepEqual(r, results[0]);
    const dir = await store.codeDir(results[0].sha256Hex);
    assert.equal(await fs.readFile(path.join(dir, 'index.js'), 'utf8'), 'exports.handler = async () => "hi";\n');
    assert.deepEqual(await fs.readdir(path.join(rootDir, 'tmp')), []);
    assert.deepEqual(await fs.readdir(path.join(rootDir, 'zips')), [`${results[0].sha256Hex}.zip`]);
  });

  it('extracts again when the tree is missing but the zip is kept', async () => {
    const zip = await sampleZip();
    const { sha256Hex } = await new FileArtifactStore({ rootDir }).putZip(zip);
    await fs.rm(path.join(rootDir, 'code', sha256Hex), { recursive: true });

    const restarted = new FileArtifactStore({ rootDir });
    const dir = await restarted.codeDir(sha256Hex);
    assert.equal((await fs.stat(path.join(dir, 'bin/tool'))).mode & 0o777, 0o755);
    assert.equal(await restarted.codeDir(sha256Hex), dir);
    assert.deepEqual(await fs.readdir(path.join(rootDir, 'tmp')), []);
  });

  it('answers codeDir from memory after the first call', async () => {
    const store = new FileArtifactStore({ rootDir });
    const { sha256Hex } = await store.putZip(await sampleZip());
    const dir = await store.codeDir(sha256Hex);
    await fs.rm(rootDir, { recursive: true });
    assert.equal(await store.codeDir(sha256Hex), dir);
  });

  it('refuses a stored zip that no longer matches its digest', async () => {
    const { sha256Hex } = await new FileArtifactStore({ rootDir }).putZip(await sampleZip());
    await fs.rm(path.join(rootDir, 'code', sha256Hex), { recursive: true });
    await fs.writeFile(path.join(rootDir, 'zips', `${sha256Hex}.zip`), 'tampered');
    await assert.rejects(new FileArtifactStore({ rootDir }).codeDir(sha256Hex), { name: 'ServiceException' });
  });

  it('answers ResourceNotFoundException for unknown or malformed digests', async () => {
    const store = new FileArtifactStore({ rootDir });
    const unknown = 'a'.repeat(64);
    await assert.rejects(store.codeDir(unknown), { name: 'ResourceNotFoundException' });
    await assert.rejects(store.readZip(unknown), { name: 'ResourceNotFoundException' });
    await assert.rejects(store.codeDir('../../etc'), { name: 'ResourceNotFoundException' });
    await assert.rejects(store.readZip('../zips/x'), { name: 'ResourceNotFoundException' });
  });

  describe('refuses hostile or broken zips and leaves nothing behind', () => {
    const cases: [string, () => Promise<Buffer> | Buffer, string, string | RegExp, ArtifactLimits?][] = [
      ['corrupt bytes', () => Buffer.from('PK\u0003\u0004 definitely not a zip'), 'InvalidParameterValueException', couldNotUnzipMessage],
      ['an empty buffer', () => Buffer.alloc(0), 'InvalidParameterValueException', couldNotUnzipMessage],
      [
        'a truncated zip',
        async () => (await sampleZip()).subarray(0, 120),
        'InvalidParameterValueException',
        couldNotUnzipMessage,
      ],
      ['a ../evil entry', () => craftZip([{ name: '../evil', data: 'x' }]), 'InvalidParameterValueException', /"\.\.\/evil"/],
      [
        'a deep escape',
        () => craftZip([{ name: 'a/../../../evil', data: 'x' }]),
        'InvalidParameterValueException',
        /escapes the archive root/,
      ],
      ['an absolute /etc/x entry', () => craftZip([{ name: '/etc/x', data: 'x' }]), 'InvalidParameterValueException', /"\/etc\/x"/],
      [
        'a symlink to ../../outside',
        () => buildZip([{ name: 'ok.txt', data: 'ok' }, symlink('sub/link', '../../outside')]),
        'InvalidParameterValueException',
        /"sub\/link".*points outside the archive/,
      ],
      [
        'a write through an inside symlink',
        () => buildZip([symlink('up', '.'), { name: 'up/x', data: 'x' }]),
        'InvalidParameterValueException',
        /parent "up" is a symbolic link/,
      ],
      [
        'a declared-size zip bomb',
        () => craftZip([{ name: 'bomb', data: 'x', deflate: true, declaredSize: 0xfffffff0 }]),
        'InvalidParameterValueException',
        'Unzipped size must be smaller than 262144000 bytes',
      ],
      [
        'a real bomb over small limits',
        () => buildZip([{ name: 'zeros', data: Buffer.alloc(1024 * 1024) }]),
        'InvalidParameterValueException',
        'Unzipped size must be smaller than 10000 bytes',
        small,
      ],
      [
        'a zip whose declared sizes lie',
        () =>
          craftZip([
            { name: 'first.txt', data: 'fine' },
            { name: 'liar', data: Buffer.alloc(4 * 1024 * 1024), deflate: true, declaredSize: 10 },
          ]),
        'InvalidParameterValueException',
        couldNotUnzipMessage,
        small,
      ],
      [
        'too many entries',
        () => buildZip(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }))),
        'InvalidParameterValueException',
        'Zip file must contain at most 10 entries (found 11)',
        small,
      ],
      [
        'an oversized upload',
        () => buildZip([{ name: 'big', data: Buffer.alloc(70_000, 1), compress: false }]),
        'RequestTooLargeException',
        'Zipped size must be smaller than 65536 bytes',
        small,
      ],
    ];

    for (const [label, make, name, message, limits] of cases) {
      it(label, async () => {
        const store = new FileArtifactStore(limits === undefined ? { rootDir } : { rootDir, limits });
        // Warm the store so the root exists and the check below sees a real layout.
        await store.codeDir('0'.repeat(64)).catch(() => undefined);
        await assert.rejects(store.putZip(await make()), (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.equal(err.name, name);
          if (typeof message === 'string') assert.equal(err.message, message);
          else assert.match(err.message, message);
          return true;
        });
        await assertNothingStored();
      });
    }
  });
});
