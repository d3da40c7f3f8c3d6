import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  couldNotUnzipMessage,
  extractZip,
  normalizeEntryPath,
  sha256Of,
  validateAndMeasureZip,
} from '../../src/artifacts/index.ts';
import { lambdaArtifactLimits, type ArtifactLimits } from '../../src/artifacts/types.ts';
import { buildZip, craftZip, symlink } from '../helpers/zip.ts';

const small: ArtifactLimits = { maxZipBytes: 64 * 1024, maxUnzippedBytes: 10_000, maxEntries: 10 };

function refusedWith(name: string, message: string | RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
    assert.equal(err.name, name);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  };
}

describe('sha256Of', () => {
  it('gives hex and base64 of the same digest', () => {
    const { sha256Hex, sha256Base64 } = sha256Of(Buffer.from('abc'));
    assert.equal(sha256Hex, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(Buffer.from(sha256Base64, 'base64').toString('hex'), sha256Hex);
  });
});

describe('normalizeEntryPath', () => {
  it('normalizes harmless paths', () => {
    assert.equal(normalizeEntryPath('a/b/c.js'), 'a/b/c.js');
    assert.equal(normalizeEntryPath('./a//b/'), 'a/b');
    assert.equal(normalizeEntryPath('a/../b'), 'b');
    assert.equal(normalizeEntryPath('./'), '');
  });

  for (const [name, reason] of [
    ['../evil', /escapes the archive root/],
    ['a/../../evil', /escapes the archive root/],
    ['/etc/x', /absolute paths/],
    ['C:/Windows/x', /drive-letter/],
    ['c:evil', /drive-letter/],
    ['..\\evil', /backslashes/],
    ['a\0b', /NUL/],
    [`${'x'.repeat(256)}/f`, /longer than 255 bytes/],
  ] as const) {
    it(`refuses ${JSON.stringify(name)}`, () => {
      assert.throws(() => normalizeEntryPath(name), refusedWith('InvalidParameterValueException', reason));
    });
  }
});

describe('validateAndMeasureZip', () => {
  it('measures a good zip', async () => {
    const zip = await buildZip([
      { name: 'index.js', data: 'exports.handler = async () => 1;' },
      { name: 'lib/', directory: true },
      { name: 'lib/a.txt', data: 'aaaa' },
    ]);
    assert.deepEqual(await validateAndMeasureZip(zip), { entryCount: 3, unzippedSizeBytes: 36 });
  });

  it('accepts an archive with no entries', async () => {
    assert.deepEqual(await validateAndMeasureZip(await buildZip([])), {
      entryCount: 0,
      unzippedSizeBytes: 0,
    });
  });

  for (const [label, bytes] of [
    ['an empty buffer', Buffer.alloc(0)],
    ['bytes that are not a zip', Buffer.from('this is not a zip file at all, just some text')],
  ] as const) {
    it(`refuses ${label} with Lambda's message`, async () => {
      await assert.rejects(
        validateAndMeasureZip(bytes),
        refusedWith('InvalidParameterValueException', couldNotUnzipMessage),
      );
    });
  }

  it('refuses a truncated zip, keeping the parser error as the cause', async () => {
    const zip = await buildZip([{ name: 'a.txt', data: 'hello '.repeat(100) }]);
    await assert.rejects(validateAndMeasureZip(zip.subarray(0, zip.length - 30)), (err: unknown) => {
      refusedWith('InvalidParameterValueException', couldNotUnzipMessage)(err);
      assert.ok((err as Error).cause instanceof Error);
      return true;
    });
  });

  it('refuses a zip over maxZipBytes with RequestTooLargeException', async () => {
    const zip = await buildZip([{ name: 'a.bin', data: Buffer.alloc(2000, 7), compress: false }]);
    await assert.rejects(
      validateAndMeasureZip(zip, { ...small, maxZipBytes: 1000 }),
      refusedWith('RequestTooLargeException', 'Zipped size must be smaller than 1000 bytes'),
    );
  });

  it('refuses a declared-size bomb before inflating anything', async () => {
    const zip = craftZip([{ name: 'bomb.bin', data: 'tiny', deflate: true, declaredSize: 262_144_001 }]);
    await assert.rejects(
      validateAndMeasureZip(zip, lambdaArtifactLimits),
      refusedWith('InvalidParameterValueException', 'Unzipped size must be smaller than 262144000 bytes'),
    );
  });

  it('refuses too many entries, from the directory record alone', async () => {
    const zip = await buildZip(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, data: 'x' })));
    await assert.rejects(
      validateAndMeasureZip(zip, small),
      refusedWith('InvalidParameterValueException', 'Zip file must contain at most 10 entries (found 11)'),
    );
  });

  it('refuses hostile names, naming the entry', async () => {
    for (const [name, reason] of [
      ['../evil', /^Invalid entry "\.\.\/evil" in zip file: the path escapes the archive root$/],
      ['/etc/x', /^Invalid entry "\/etc\/x" in zip file: absolute paths are not allowed$/],
      ['..\\..\\evil', /backslashes are not allowed/],
      ['C:/evil', /drive-letter paths/],
      ['a\0b', /^Invalid entry "a\\u0000b" in zip file: entry names must not contain NUL/],
    ] as const) {
      await assert.rejects(
        validateAndMeasureZip(craftZip([{ name, data: 'x' }])),
        refusedWith('InvalidParameterValueException', reason),
      );
    }
  });

  it('refuses duplicate names, also after normalization, but merges repeated directories', async () => {
    await assert.rejects(
      validateAndMeasureZip(craftZip([{ name: 'a.js', data: '1' }, { name: 'a.js', data: '2' }])),
      refusedWith('InvalidParameterValueException', /^Duplicate entry "a\.js" in zip file/),
    );
    await assert.rejects(
      validateAndMeasureZip(craftZip([{ name: 'b/a.js', data: '1' }, { name: 'x/../b/a.js', data: '2' }])),
      refusedWith('InvalidParameterValueException', /^Duplicate entry "x\/\.\.\/b\/a\.js"/),
    );
    const dirs = craftZip([
      { name: 'd/', unixMode: 0o40755 },
      { name: 'd/', unixMode: 0o40755 },
      { name: 'd/f', data: 'x' },
    ]);
    assert.equal((await validateAndMeasureZip(dirs)).entryCount, 3);
  });

  it('refuses an entry whose local header names another file', async () => {
    await assert.rejects(
      validateAndMeasureZip(craftZip([{ name: 'safe.txt', localName: '../evil', data: 'x' }])),
      refusedWith('InvalidParameterValueException', /"safe\.txt".*local file header/),
    );
  });

  it('refuses device files and fifos', async () => {
    await assert.rejects(
      validateAndMeasureZip(craftZip([{ name: 'fifo', unixMode: 0o010644 }])),
      refusedWith('InvalidParameterValueException', /only regular files, directories and symbolic links/),
    );
  });

  it('refuses symlinks that leave the root, including through other links', async () => {
    const cases: [string, Parameters<typeof buildZip>[0]][] = [
      ['../../outside', [symlink('a/link', '../../outside')]],
      ['absolute', [symlink('link', '/etc/passwd')]],
      // Lexically d/../l/.. is the root; on disk l is the root, so l/.. is its parent.
      ['chained', [symlink('l', '.'), { name: 'd/', directory: true }, symlink('d/x', '../l/..')]],
      ['loop', [symlink('a', 'b'), symlink('b', 'a')]],
    ];
    for (const [label, entries] of cases) {
      await assert.rejects(
        validateAndMeasureZip(await buildZip(entries)),
        refusedWith('InvalidParameterValueException', /symbolic link target .* points outside the archive/),
        label,
      );
    }
  });

  it('refuses entries beneath a symlink or a file', async () => {
    await assert.rejects(
      validateAndMeasureZip(await buildZip([symlink('l', 'sub'), { name: 'l/f', data: 'x' }])),
      refusedWith('InvalidParameterValueException', /"l\/f".*parent "l" is a symbolic link/),
    );
    await assert.rejects(
      validateAndMeasureZip(craftZip([{ name: 'f', data: 'x' }, { name: 'f/g', data: 'y' }])),
      refusedWith('InvalidParameterValueException', /"f\/g".*parent "f" is a file/),
    );
  });
});

describe('extractZip', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'nimbus-zip-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('extracts files, directories, modes and inside links', async () => {
    const zip = await buildZip([
      { name: 'bootstrap', data: '#!/bin/sh\necho hi\n', mode: 0o100755 },
      { name: 'lib/deep/er/data.json', data: '{"a":1}', mode: 0o100600 },
      { name: 'empty/', directory: true },
      symlink('lib/current', 'deep/er/data.json'),
      symlink('bin', '.'),
    ]);
    const dest = path.join(dir, 'out');
    const measured = await extractZip(zip, dest);
    assert.equal(measured.entryCount, 5);
    assert.equal((await fs.stat(path.join(dest, 'bootstrap'))).mode & 0o777, 0o755);
    assert.equal((await fs.stat(path.join(dest, 'lib/deep/er/data.json'))).mode & 0o777, 0o644);
    assert.equal((await fs.stat(path.join(dest, 'lib/deep'))).mode & 0o777, 0o755);
    assert.ok((await fs.stat(path.join(dest, 'empty'))).isDirectory());
    assert.equal(await fs.readFile(path.join(dest, 'lib/current'), 'utf8'), '{"a":1}');
    assert.equal(await fs.readlink(path.join(dest, 'bin')), '.');
    assert.equal((await fs.stat(dest)).mode & 0o777, 0o755);
  });

  it('stops inflating when an entry passes its declared size', async () => {
    // 1 MiB of zeros deflates to about 1 KiB; the headers claim 100 bytes.
    const zip = craftZip([{ name: 'liar.bin', data: Buffer.alloc(1024 * 1024), deflate: true, declaredSize: 100 }]);
    const dest = path.join(dir, 'out');
    await assert.rejects(extractZip(zip, dest), (err: unknown) => {
      refusedWith('InvalidParameterValueException', couldNotUnzipMessage)(err);
      assert.match(String((err as Error).cause), /too many bytes|inflated past/);
      return true;
    });
    const stats = await fs.stat(path.join(dest, 'liar.bin')).catch(() => undefined);
    assert.ok(stats === undefined || stats.size <= 100, 'no more than the declared bytes reach the disk');
  });

  it('streams large entries, and stops a large liar at its declared size', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const ok = path.join(dir, 'ok');
    await extractZip(await buildZip([{ name: 'big.bin', data: big }]), ok);
    assert.deepEqual(await fs.readFile(path.join(ok, 'big.bin')), big);

    const declared = 2 * 1024 * 1024;
    const liar = craftZip([{ name: 'big.bin', data: Buffer.alloc(8 * 1024 * 1024), deflate: true, declaredSize: declared }]);
    const bad = path.join(dir, 'bad');
    await assert.rejects(extractZip(liar, bad), refusedWith('InvalidParameterValueException', couldNotUnzipMessage));
    assert.ok((await fs.stat(path.join(bad, 'big.bin'))).size <= declared);
  });

  it('refuses an entry that inflates to fewer bytes than declared', async () => {
    const zip = craftZip([{ name: 'short.bin', data: 'abc', deflate: true, declaredSize: 50 }]);
    await assert.rejects(
      extractZip(zip, path.join(dir, 'out')),
      refusedWith('InvalidParameterValueException', couldNotUnzipMessage),
    );
  });

  it('refuses corrupt compressed data', async () => {
    const zip = craftZip([{ name: 'a.txt', data: 'hello hello hello hello', deflate: true }]);
    const dataStart = 30 + 'a.txt'.length;
    zip.fill(0xff, dataStart, dataStart + 4);
    await assert.rejects(
      extractZip(zip, path.join(dir, 'out')),
      refusedWith('InvalidParameterValueException', couldNotUnzipMessage),
    );
  });

  it('refuses a CRC mismatch', async () => {
    const zip = craftZip([{ name: 'a.txt', data: 'hello', deflate: false }]);
    zip[30 + 'a.txt'.length] = 'j'.charCodeAt(0); // stored data: "jello"
    await assert.rejects(extractZip(zip, path.join(dir, 'out')), (err: unknown) => {
      refusedWith('InvalidParameterValueException', couldNotUnzipMessage)(err);
      assert.match(String((err as Error).cause), /CRC-32/);
      return true;
    });
  });
});
