/**
 * LayerService on the embedded backends (SQLite in memory, file artifact store, file
 * merger): version numbering under concurrent publishes, the LayerResolver rules Lambda
 * applies to a function's Layers, deleted versions that still resolve for /opt, and the
 * name, ARN and version parsing whose limits the HTTP router cannot always reach.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { FileArtifactStore } from '../../src/artifacts/file-artifact-store.ts';
import { fixedClock } from '../../src/clock/clock.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { LayerService } from '../../src/layers/layer-service.ts';
import { FileOptMerger } from '../../src/layers/merged-opt.ts';
import { parseFunctionLayerArn, parseLayerName, parseLayerVersionArn, parseVersionNumber } from '../../src/layers/layer-arn.ts';
import { buildZip } from '../helpers/zip.ts';

let tmp: string;
let store: SqliteStore;
const logger = createLogger({ level: 'error', format: 'json', write: () => undefined });

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'nimbus-layer-service-'));
  store = SqliteStore.open({ filePath: ':memory:' });
});
after(async () => {
  await store.close();
  await rm(tmp, { recursive: true, force: true });
});

function service(options: { maxLayersUnzippedBytes?: number } = {}): LayerService {
  return new LayerService({
    store,
    artifacts: new FileArtifactStore({ rootDir: path.join(tmp, 'artifacts') }),
    merger: new FileOptMerger({ rootDir: path.join(tmp, 'artifacts', 'opt'), logger }),
    clock: fixedClock(new Date('2026-11-23T10:11:12.345Z')),
    logger,
    region: 'us-east-1',
    accountId: '000000000000',
    ...options,
  });
}

const content = async (files: Record<string, string>) => ({
  Content: { ZipFile: (await buildZip(Object.entries(files).map(([name, data]) => ({ name, data })))).toString('base64') },
});

async function rejectsWith(call: Promise<unknown>, name: string, message: string): Promise<void> {
  await assert.rejects(call, (err: Error) => {
    assert.equal(err.name, name);
    assert.equal(err.message, message);
    return true;
  });
}

test('concurrent publishes of one layer get distinct versions in order; the record keeps what Lambda reports', async () => {
  const layers = service();
  const published = await Promise.all(
    [1, 2, 3, 4, 5].map(async (n) => layers.publish({ layerName: 'busy' }, await content({ [`f${n}.txt`]: String(n) }))),
  );
  assert.deepEqual(published.map((r) => r.version).sort(), [1, 2, 3, 4, 5]);
  const first = published.find((r) => r.version === 1)!;
  assert.equal(first.createdDate, '2026-11-23T10:11:12.345+0000');
  assert.equal(first.codeSha256, Buffer.from(first.codeSha256Hex, 'hex').toString('base64'));
  assert.ok(first.unzippedSizeBytes > 0);
  const page = await layers.listVersions({ layerName: 'busy' }, {}, undefined, 50);
  assert.deepEqual(page.items.map((r) => r.version), [5, 4, 3, 2, 1]);
});

test('validate: Lambda order of checks, the ARNs kept in order, CodeSize by ARN', async () => {
  const layers = service();
  const a = await layers.publish({ layerName: 'val-a' }, await content({ 'a.txt': 'a' }));
  const b = await layers.publish({ layerName: 'val-b' }, await content({ 'b.txt': 'b' }));
  const arnA = layers.versionArn(a);
  const arnB = layers.versionArn(b);
  assert.deepEqual(await layers.validate([arnB, arnA], 'nodejs24.x', 'x86_64'), [arnB, arnA]);
  assert.deepEqual(await layers.validate(undefined, 'nodejs24.x', 'x86_64'), []);
  assert.deepEqual(await layers.validate(null, 'nodejs24.x', 'x86_64'), []);
  assert.deepEqual(await layers.codeSizes([arnA, arnB]), { [arnA]: a.codeSizeBytes, [arnB]: b.codeSizeBytes });
  // Lambda does not hold CompatibleRuntimes / CompatibleArchitectures against a function.
  assert.deepEqual(await layers.validate([arnA], 'python3.12', 'arm64'), [arnA]);
  // The model check comes before the count: a malformed entry in a list of 6 is a ValidationException.
  await assert.rejects(layers.validate([arnA, arnA, arnA, arnA, arnA, 'nope'], 'nodejs24.x', 'x86_64'), { name: 'ValidationException' });
  await rejectsWith(layers.validate([arnA, arnA, arnA, arnA, arnA, arnA], 'nodejs24.x', 'x86_64'), 'InvalidParameterValueException', 'Cannot reference more than 5 layers.');
  await rejectsWith(layers.validate('arn', 'nodejs24.x', 'x86_64'), 'InvalidParameterValueException', 'Layers must be a list of layer version ARNs, got "arn".');
  const otherPartition = arnA.replace('arn:aws:', 'arn:aws-cn:');
  await rejectsWith(layers.validate([otherPartition], 'nodejs24.x', 'x86_64'), 'InvalidParameterValueException', `Layer version ${otherPartition} does not exist.`);
  const awsLayer = 'arn:aws:lambda:::awslayer:AmazonLinux2';
  await rejectsWith(layers.validate([awsLayer], 'nodejs24.x', 'x86_64'), 'InvalidParameterValueException', `Layer version ${awsLayer} does not exist.`);
});

test('validate: the layers together must fit in the unzipped limit', async () => {
  const small = service({ maxLayersUnzippedBytes: 1500 });
  const a = await small.publish({ layerName: 'size-a' }, await content({ 'a.bin': 'a'.repeat(1000) }));
  const b = await small.publish({ layerName: 'size-b' }, await content({ 'b.bin': 'b'.repeat(1000) }));
  assert.deepEqual(await small.validate([small.versionArn(a)], 'nodejs24.x', 'x86_64'), [small.versionArn(a)]);
  await rejectsWith(
    small.validate([small.versionArn(a), small.versionArn(b)], 'nodejs24.x', 'x86_64'),
    'InvalidParameterValueException',
    'Layers consume more than the available size of 1500 bytes',
  );
});

test('a deleted version: gone for Get, List and validate; still merged into /opt with its CodeSize', async () => {
  const layers = service();
  const a = await layers.publish({ layerName: 'del-a' }, await content({ 'shared.txt': 'from a', 'a.txt': 'a' }));
  const b = await layers.publish({ layerName: 'del-b' }, await content({ 'shared.txt': 'from b' }));
  const arns = [layers.versionArn(a), layers.versionArn(b)];
  await layers.delete({ layerName: 'del-a' }, 1);
  await layers.delete({ layerName: 'del-a' }, 1);
  await rejectsWith(layers.get({ layerName: 'del-a' }, 1), 'ResourceNotFoundException', 'The resource you requested does not exist.');
  assert.deepEqual((await layers.listVersions({ layerName: 'del-a' }, {}, undefined, 50)).items, []);
  await rejectsWith(layers.validate(arns, 'nodejs24.x', 'x86_64'), 'InvalidParameterValueException', `Layer version ${arns[0]} does not exist.`);

  // A fresh service (a restart) resolves the deleted version from its tombstone.
  const restarted = service();
  const dir = await restarted.mergedDir(arns);
  assert.ok(dir);
  assert.equal(await readFile(path.join(dir, 'shared.txt'), 'utf8'), 'from b');
  assert.equal(await readFile(path.join(dir, 'a.txt'), 'utf8'), 'a');
  assert.deepEqual(await restarted.codeSizes(arns), { [arns[0]!]: a.codeSizeBytes, [arns[1]!]: b.codeSizeBytes });
  assert.equal(await restarted.mergedDir([]), undefined);
  const next = await restarted.publish({ layerName: 'del-a' }, await content({ 'a.txt': 'again' }));
  assert.equal(next.version, 2);
});

test('layer names, layer version ARNs and version numbers: the model limits and messages', () => {
  assert.deepEqual(parseLayerName('my-layer_1'), { layerName: 'my-layer_1' });
  assert.deepEqual(parseLayerName('arn:aws:lambda:us-east-1:000000000000:layer:my-layer'), {
    layerName: 'my-layer',
    region: 'us-east-1',
    accountId: '000000000000',
  });
  assert.deepEqual(parseLayerName('x'.repeat(140)), { layerName: 'x'.repeat(140) });
  assert.throws(() => parseLayerName('x'.repeat(141)), {
    name: 'ValidationException',
    message: `1 validation error detected: Value '${'x'.repeat(141)}' at 'layerName' failed to satisfy constraint: Member must have length less than or equal to 140`,
  });
  assert.throws(() => parseLayerName(''), { name: 'ValidationException' });
  assert.throws(() => parseLayerName('arn:aws:lambda:us-east-1:000000000000:layer:my-layer:3'), { name: 'ValidationException' });

  assert.deepEqual(parseLayerVersionArn('arn:aws:lambda:eu-west-1:123456789012:layer:lib:12'), {
    region: 'eu-west-1',
    accountId: '123456789012',
    layerName: 'lib',
    version: 12,
  });
  const long = `arn:aws:lambda:us-east-1:000000000000:layer:${'n'.repeat(100)}:1`;
  assert.throws(() => parseLayerVersionArn(long), {
    message: `1 validation error detected: Value '${long}' at 'arn' failed to satisfy constraint: Member must have length less than or equal to 140`,
  });
  assert.equal(parseFunctionLayerArn('arn:aws:lambda:::awslayer:AmazonLinux2'), undefined);
  assert.deepEqual(parseFunctionLayerArn('arn:aws:lambda:eusc-de-east-1:000000000000:layer:x:2'), {
    region: 'eusc-de-east-1',
    accountId: '000000000000',
    layerName: 'x',
    version: 2,
  });

  assert.equal(parseVersionNumber('7'), 7);
  assert.throws(() => parseVersionNumber('0'), { name: 'InvalidParameterValueException', message: 'Layer Version Cannot be less than 1' });
  assert.throws(() => parseVersionNumber('-1'), { name: 'InvalidParameterValueException', message: 'Layer Version Cannot be less than 1' });
  assert.throws(() => parseVersionNumber('1.5'), {
    name: 'ValidationException',
    message: "1 validation error detected: Value '1.5' at 'versionNumber' failed to satisfy constraint: Member must be a whole number (a layer version)",
  });
});
