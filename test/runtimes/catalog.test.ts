import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidParameterValueException } from '../../src/errors/platform-errors.ts';
import { assertRuntimeUsable, listRuntimes, lookupRuntime, runtimePhase } from '../../src/runtimes/catalog.ts';

/** The day this table was last checked against Lambda's runtime page. */
const NOW = new Date('2026-11-23T12:00:00Z');

function thrown(fn: () => unknown): InvalidParameterValueException {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidParameterValueException, `expected InvalidParameterValueException, got ${String(err)}`);
    return err;
  }
  assert.fail('expected an InvalidParameterValueException');
}

describe('runtime catalog', () => {
  it('lists every managed runtime family Lambda documents', () => {
    const ids = new Set(listRuntimes().map((r) => r.id));
    for (const id of [
      'nodejs24.x', 'nodejs22.x', 'nodejs20.x', 'nodejs18.x', 'nodejs16.x', 'nodejs14.x', 'nodejs12.x',
      'python3.14', 'python3.13', 'python3.12', 'python3.11', 'python3.10', 'python3.9', 'python3.8',
      'java25', 'java21', 'java17', 'java11', 'java8.al2', 'java8',
      'dotnet10', 'dotnet8', 'dotnet6', 'ruby4.0', 'ruby3.4', 'ruby3.3', 'ruby3.2',
      'provided', 'provided.al2', 'provided.al2023',
    ]) {
      assert.ok(ids.has(id), `${id} is missing`);
    }
  });

  it('has exactly the Runtime values of the AWS SDK (a new SDK value means a new row here)', async () => {
    const { Runtime } = await import('@aws-sdk/client-lambda');
    const sdk: string[] = Object.values(Runtime);
    assert.deepEqual(listRuntimes().map((r) => r.id).sort(), [...sdk].sort());
  });

  it('is frozen', () => {
    const info = lookupRuntime('nodejs22.x');
    assert.ok(info);
    assert.ok(Object.isFrozen(info));
    assert.ok(Object.isFrozen(listRuntimes()));
  });

  it('keeps every entry consistent', () => {
    const seen = new Set<string>();
    for (const info of listRuntimes()) {
      assert.ok(!seen.has(info.id), `${info.id} listed twice`);
      seen.add(info.id);
      for (const date of [info.deprecationDate, info.blockCreateDate, info.blockUpdateDate]) {
        if (date !== undefined) assert.match(date, /^\d{4}-\d{2}-\d{2}$/, `${info.id}: ${date}`);
      }
      const dated = [info.deprecationDate, info.blockCreateDate, info.blockUpdateDate].filter((d) => d !== undefined);
      assert.ok(dated.length === 0 || dated.length === 3, `${info.id} has a partial schedule`);
      if (info.blockCreateDate && info.blockUpdateDate) {
        assert.ok(info.blockCreateDate <= info.blockUpdateDate, `${info.id}: blocks create after update`);
      }
      if (info.successor !== undefined) {
        const successor = lookupRuntime(info.successor);
        assert.ok(successor, `${info.id}: successor ${info.successor} not in the table`);
        assert.equal(successor.family, info.family, `${info.id}: successor of another family`);
        assert.equal(runtimePhase(successor, NOW), 'supported', `${info.id}: successor ${info.successor} is deprecated`);
      }
      if (info.family === 'nodejs') assert.match(info.languageVersion ?? '', /^\d+$/, info.id);
      if (info.family === 'python') assert.equal(`python${info.languageVersion}`, info.id);
      if (runtimePhase(info, NOW) !== 'supported') assert.ok(info.successor, `${info.id} is deprecated but has no successor`);
    }
  });

  it('places the anchors of November 2026 where Lambda lists them', () => {
    for (const id of ['nodejs24.x', 'nodejs22.x', 'python3.14', 'python3.13', 'java21', 'provided.al2023']) {
      assert.equal(runtimePhase(lookupRuntime(id)!, NOW), 'supported', id);
    }
    // Deprecated, but Lambda extended their block dates in 2026: still creatable today.
    for (const id of ['nodejs20.x', 'nodejs18.x', 'python3.10', 'python3.9', 'dotnet8', 'provided.al2']) {
      assert.equal(runtimePhase(lookupRuntime(id)!, NOW), 'deprecated', id);
    }
    assert.deepEqual(
      [lookupRuntime('nodejs18.x')?.deprecationDate, lookupRuntime('nodejs18.x')?.blockCreateDate, lookupRuntime('nodejs18.x')?.blockUpdateDate],
      ['2025-09-01', '2027-02-01', '2027-08-31'],
    );
    assert.equal(lookupRuntime('nodejs20.x')?.blockCreateDate, '2027-02-01');
    assert.equal(lookupRuntime('python3.10')?.deprecationDate, '2026-10-31');
    assert.equal(lookupRuntime('python3.10')?.blockCreateDate, '2027-02-01');
    for (const id of ['nodejs12.x', 'python3.6', 'dotnetcore3.1', 'nodejs']) {
      assert.equal(runtimePhase(lookupRuntime(id)!, NOW), 'update-blocked', id);
    }
  });

  it('starts each phase at 00:00 UTC on its date', () => {
    const nodejs20 = lookupRuntime('nodejs20.x')!;
    assert.equal(runtimePhase(nodejs20, new Date('2026-04-29T23:59:59Z')), 'supported');
    assert.equal(runtimePhase(nodejs20, new Date('2026-04-30T00:00:00Z')), 'deprecated');
    assert.equal(runtimePhase(nodejs20, new Date('2027-01-31T23:59:59Z')), 'deprecated');
    assert.equal(runtimePhase(nodejs20, new Date('2027-02-01T00:00:00Z')), 'create-blocked');
    assert.equal(runtimePhase(nodejs20, new Date('2027-08-31T00:00:00Z')), 'update-blocked');
  });
});

describe('assertRuntimeUsable', () => {
  it('allows supported runtimes and returns their info', () => {
    assert.equal(assertRuntimeUsable('nodejs24.x', 'create', NOW).id, 'nodejs24.x');
    assert.equal(assertRuntimeUsable('python3.13', 'update', NOW).family, 'python');
  });

  it('allows deprecated runtimes that are not blocked yet', () => {
    const info = assertRuntimeUsable('nodejs18.x', 'create', NOW);
    assert.equal(runtimePhase(info, NOW), 'deprecated');
    assert.equal(assertRuntimeUsable('python3.10', 'update', NOW).id, 'python3.10');
  });

  it('refuses creation after the block-create date with Lambda\'s message', () => {
    const at = new Date('2027-02-01T00:00:00Z');
    const err = thrown(() => assertRuntimeUsable('nodejs18.x', 'create', at));
    assert.equal(err.name, 'InvalidParameterValueException');
    assert.equal(err.statusCode, 400);
    assert.equal(
      err.message,
      'The runtime parameter of nodejs18.x is no longer supported for creating or updating AWS Lambda functions. ' +
        'We recommend you use the new runtime (nodejs24.x) while creating or updating functions. ' +
        'Creating functions that use nodejs18.x has been blocked since 2027-02-01.',
    );
    // Updates stay allowed until the block-update date.
    assert.equal(assertRuntimeUsable('nodejs18.x', 'update', at).id, 'nodejs18.x');
  });

  it('refuses updates after the block-update date', () => {
    const err = thrown(() => assertRuntimeUsable('python3.6', 'update', NOW));
    assert.match(err.message, /^The runtime parameter of python3\.6 is no longer supported for creating or updating AWS Lambda functions\. We recommend you use the new runtime \(python3\.14\)/);
    assert.match(err.message, /Updating functions that use python3\.6 has been blocked since 2022-08-29\.$/);
  });

  it('answers an unknown runtime with Lambda\'s enum validation message', () => {
    const err = thrown(() => assertRuntimeUsable('nodejs99.x', 'create', NOW));
    assert.match(
      err.message,
      /^1 validation error detected: Value 'nodejs99\.x' at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: \[.*\] or be a valid ARN$/,
    );
    const listed = /\[(.*)\]/.exec(err.message)![1]!.split(', ');
    assert.ok(listed.includes('nodejs24.x'));
    assert.ok(listed.includes('nodejs18.x'), 'deprecated but creatable runtimes are accepted values');
    assert.ok(!listed.includes('nodejs12.x'), 'blocked runtimes are not offered');
    assert.ok(thrown(() => assertRuntimeUsable('', 'update', NOW)).message.includes("Value '' at 'runtime'"));
    assert.ok(thrown(() => assertRuntimeUsable('NODEJS24.X', 'create', NOW)), 'ids are case-sensitive');
  });
});
