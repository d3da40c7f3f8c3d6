/**
 * The Store contract: behaviour every backend (SQLite today, PostgreSQL later) must share.
 * A backend's test calls `runStoreContract('SqliteStore', (options) => …)`; each test gets
 * a fresh, empty store and closes it afterwards.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  InvalidParameterValueException,
  type PlatformError,
  PreconditionFailedException,
  ResourceConflictException,
  ResourceNotFoundException,
} from '../../src/errors/index.ts';
import type { FunctionRecord } from '../../src/functions/index.ts';
import type { LogRecord, Store } from '../../src/store/index.ts';

export interface StoreContractOptions {
  /** Asked for by the retention tests; a backend must honour it. */
  logRetentionPerFunction?: number;
}

/** A complete record with nested objects, so round-trips are meaningful. */
export function makeFunctionRecord(overrides: Partial<FunctionRecord> = {}): FunctionRecord {
  const functionName = overrides.functionName ?? 'my-function';
  return {
    functionName,
    version: '$LATEST',
    runtime: 'nodejs22.x',
    handler: 'index.handler',
    role: 'arn:aws:iam::123456789012:role/lambda-role',
    description: 'a test function — with ünïcode',
    timeoutSeconds: 3,
    memoryMb: 128,
    ephemeralStorageMb: 512,
    environment: { STAGE: 'test', EMPTY: '', QUOTES: 'say "hi"\n' },
    architectures: ['x86_64'],
    codeSha256: 'n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=',
    codeSizeBytes: 1024,
    lastModified: '2026-11-23T10:00:00.000+0000',
    revisionId: 'rev-1',
    state: 'Active',
    lastUpdateStatus: 'Successful',
    loggingConfig: { logFormat: 'JSON', logGroup: `/aws/lambda/${functionName}`, applicationLogLevel: 'INFO' },
    tracingMode: 'PassThrough',
    layers: ['arn:aws:lambda:us-east-1:123456789012:layer:shared:3'],
    tags: { team: 'platform', 'cost-center': '42' },
    createdAtMs: 1_795_000_000_000,
    ...overrides,
  };
}

export function makeLogRecord(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    functionName: 'my-function',
    logStream: '2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef',
    timestampMs: 1_795_000_000_000,
    message: 'hello',
    ...overrides,
  };
}

/** Asserts that `promise` rejects with exactly this error class and message. */
export async function rejectsWith(
  promise: Promise<unknown>,
  errorClass: new (message: string) => PlatformError,
  message: string | RegExp,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

const logsOf = (n: number, fields: Partial<LogRecord> = {}): LogRecord[] =>
  Array.from({ length: n }, (_, i) => makeLogRecord({ message: `line ${i}`, timestampMs: 1000 + i, ...fields }));

export function runStoreContract(
  name: string,
  makeStore: (options?: StoreContractOptions) => Promise<Store>,
): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    it('reports a schema version', () => {
      assert.ok(store.schemaVersion() >= 1);
    });

    describe('functions', () => {
      it('round-trips a record exactly', async () => {
        const record = makeFunctionRecord();
        await store.createFunction(record);
        assert.deepStrictEqual(await store.getFunction(record.functionName), record);
      });

      it('returns undefined for an unknown function', async () => {
        assert.equal(await store.getFunction('nope'), undefined);
      });

      it('returns copies: mutating input or output does not change the stored record', async () => {
        const record = makeFunctionRecord();
        await store.createFunction(record);
        record.environment.STAGE = 'mutated';
        const first = await store.getFunction(record.functionName);
        assert.ok(first);
        first.tags.team = 'mutated';
        const second = await store.getFunction(record.functionName);
        assert.equal(second?.environment.STAGE, 'test');
        assert.equal(second?.tags.team, 'platform');
      });

      it('refuses to create a function twice and keeps the original', async () => {
        const record = makeFunctionRecord();
        await store.createFunction(record);
        await rejectsWith(
          store.createFunction({ ...record, description: 'second' }),
          ResourceConflictException,
          'Function already exist: my-function',
        );
        assert.equal((await store.getFunction('my-function'))?.description, record.description);
      });

      it('replaces a record on update', async () => {
        await store.createFunction(makeFunctionRecord());
        const updated = makeFunctionRecord({ memoryMb: 256, revisionId: 'rev-2', environment: { A: '1' } });
        await store.updateFunction(updated);
        assert.deepStrictEqual(await store.getFunction('my-function'), updated);
      });

      it('updates when the expected revision matches', async () => {
        await store.createFunction(makeFunctionRecord());
        await store.updateFunction(makeFunctionRecord({ revisionId: 'rev-2' }), 'rev-1');
        assert.equal((await store.getFunction('my-function'))?.revisionId, 'rev-2');
      });

      it('refuses an update with a stale revision and changes nothing', async () => {
        await store.createFunction(makeFunctionRecord());
        await store.updateFunction(makeFunctionRecord({ revisionId: 'rev-2' }), 'rev-1');
        await rejectsWith(
          store.updateFunction(makeFunctionRecord({ revisionId: 'rev-3', memoryMb: 512 }), 'rev-1'),
          PreconditionFailedException,
          'The Revision Id provided does not match the latest Revision Id. ' +
            'Call the GetFunction/GetAlias API to retrieve the latest Revision Id',
        );
        const stored = await store.getFunction('my-function');
        assert.equal(stored?.revisionId, 'rev-2');
        assert.equal(stored?.memoryMb, 128);
      });

      it('refuses to update an unknown function', async () => {
        await rejectsWith(
          store.updateFunction(makeFunctionRecord({ functionName: 'ghost' })),
          ResourceNotFoundException,
          'Function not found: ghost',
        );
        await rejectsWith(
          store.updateFunction(makeFunctionRecord({ functionName: 'ghost' }), 'rev-1'),
          ResourceNotFoundException,
          'Function not found: ghost',
        );
        assert.equal(await store.getFunction('ghost'), undefined);
      });

      it('deletes a function and reports whether it existed', async () => {
        await store.createFunction(makeFunctionRecord());
        assert.equal(await store.deleteFunction('my-function'), true);
        assert.equal(await store.getFunction('my-function'), undefined);
        assert.equal(await store.deleteFunction('my-function'), false);
        // The name is free again.
        await store.createFunction(makeFunctionRecord());
      });

      it('deletes a function’s logs with it, and only its logs', async () => {
        await store.createFunction(makeFunctionRecord({ functionName: 'a' }));
        await store.createFunction(makeFunctionRecord({ functionName: 'b' }));
        await store.appendLogs([...logsOf(3, { functionName: 'a' }), ...logsOf(2, { functionName: 'b' })]);
        await store.deleteFunction('a');
        assert.deepEqual(await store.queryLogs({ functionName: 'a' }), []);
        assert.equal((await store.queryLogs({ functionName: 'b' })).length, 2);
      });

      it('reports usage: count and total code size', async () => {
        assert.deepEqual(await store.usage(), { functionCount: 0, totalCodeSizeBytes: 0 });
        await store.createFunction(makeFunctionRecord({ functionName: 'a', codeSizeBytes: 100 }));
        await store.createFunction(makeFunctionRecord({ functionName: 'b', codeSizeBytes: 250 }));
        assert.deepEqual(await store.usage(), { functionCount: 2, totalCodeSizeBytes: 350 });
        await store.updateFunction(makeFunctionRecord({ functionName: 'a', codeSizeBytes: 1000 }));
        assert.deepEqual(await store.usage(), { functionCount: 2, totalCodeSizeBytes: 1250 });
        await store.deleteFunction('b');
        assert.deepEqual(await store.usage(), { functionCount: 1, totalCodeSizeBytes: 1000 });
      });
    });

    describe('listFunctions', () => {
      const names = ['delta', 'alpha', 'echo', 'charlie', 'bravo'];
      const createAll = async (): Promise<void> => {
        for (const [i, functionName] of names.entries()) {
          await store.createFunction(makeFunctionRecord({ functionName, createdAtMs: 1000 + i }));
        }
      };
      const collect = async (maxItems: number): Promise<string[][]> => {
        const pages: string[][] = [];
        let marker: string | undefined;
        do {
          const page = await store.listFunctions({ marker, maxItems });
          pages.push(page.items.map((f) => f.functionName));
          marker = page.nextMarker;
        } while (marker !== undefined);
        return pages;
      };

      it('returns an empty last page for an empty store', async () => {
        assert.deepEqual(await store.listFunctions({ maxItems: 10 }), { items: [] });
      });

      it('orders by name and returns full records', async () => {
        await createAll();
        const page = await store.listFunctions({ maxItems: 50 });
        assert.deepEqual(
          page.items.map((f) => f.functionName),
          ['alpha', 'bravo', 'charlie', 'delta', 'echo'],
        );
        assert.equal(page.nextMarker, undefined);
        assert.deepStrictEqual(page.items[0], makeFunctionRecord({ functionName: 'alpha', createdAtMs: 1001 }));
      });

      it('pages with opaque markers', async () => {
        await createAll();
        assert.deepEqual(await collect(2), [['alpha', 'bravo'], ['charlie', 'delta'], ['echo']]);
        // An exact multiple of the page size ends without a marker, not with an empty page.
        await store.deleteFunction('echo');
        assert.deepEqual(await collect(2), [['alpha', 'bravo'], ['charlie', 'delta']]);
      });

      it('continues after the marker even if that function was deleted', async () => {
        await createAll();
        const first = await store.listFunctions({ maxItems: 2 });
        assert.ok(first.nextMarker);
        await store.deleteFunction('bravo');
        const second = await store.listFunctions({ marker: first.nextMarker, maxItems: 2 });
        assert.deepEqual(second.items.map((f) => f.functionName), ['charlie', 'delta']);
      });

      it('rejects an invalid marker', async () => {
        await createAll();
        for (const marker of ['', 'not a marker!', 'YWxwaGE', 'e30']) {
          await rejectsWith(store.listFunctions({ marker, maxItems: 2 }), InvalidParameterValueException, /Marker/);
        }
      });

      it('rejects a maxItems that is not a positive integer', async () => {
        for (const maxItems of [0, -1, 1.5, Number.NaN]) {
          await rejectsWith(store.listFunctions({ maxItems }), InvalidParameterValueException, /MaxItems/);
        }
      });
    });

    describe('logs', () => {
      it('appends and queries in ascending seq order with all fields', async () => {
        const records = [
          makeLogRecord({ message: 'START', requestId: 'req-1', timestampMs: 10 }),
          makeLogRecord({ message: 'no request id', timestampMs: 11 }),
          makeLogRecord({ message: 'END ünïcode "q"\ttab', requestId: 'req-1', timestampMs: 12 }),
        ];
        await store.appendLogs(records);
        const stored = await store.queryLogs({ functionName: 'my-function' });
        assert.equal(stored.length, 3);
        for (let i = 1; i < stored.length; i++) assert.ok(stored[i].seq > stored[i - 1].seq);
        assert.deepStrictEqual(
          stored.map(({ seq: _seq, ...rest }) => rest),
          records,
        );
        assert.equal('requestId' in stored[1], false);
      });

      it('keeps seq increasing across batches', async () => {
        await store.appendLogs(logsOf(2));
        await store.appendLogs([]);
        await store.appendLogs(logsOf(2));
        const seqs = (await store.queryLogs({ functionName: 'my-function' })).map((r) => r.seq);
        assert.equal(seqs.length, 4);
        assert.deepEqual([...seqs].sort((a, b) => a - b), seqs);
        assert.equal(new Set(seqs).size, 4);
      });

      it('keeps functions apart', async () => {
        await store.appendLogs([...logsOf(2, { functionName: 'a' }), ...logsOf(3, { functionName: 'b' })]);
        assert.equal((await store.queryLogs({ functionName: 'a' })).length, 2);
        assert.equal((await store.queryLogs({ functionName: 'b' })).length, 3);
        assert.deepEqual(await store.queryLogs({ functionName: 'c' }), []);
      });

      it('filters by afterSeq (for --follow)', async () => {
        await store.appendLogs(logsOf(5));
        const all = await store.queryLogs({ functionName: 'my-function' });
        const after = await store.queryLogs({ functionName: 'my-function', afterSeq: all[2].seq });
        assert.deepEqual(after, all.slice(3));
        assert.deepEqual(await store.queryLogs({ functionName: 'my-function', afterSeq: all[4].seq }), []);
      });

      it('filters by sinceMs, inclusive', async () => {
        await store.appendLogs(logsOf(5)); // timestamps 1000..1004
        const since = await store.queryLogs({ functionName: 'my-function', sinceMs: 1002 });
        assert.deepEqual(since.map((r) => r.timestampMs), [1002, 1003, 1004]);
      });

      it('returns the newest `limit` records, still ascending', async () => {
        await store.appendLogs(logsOf(10));
        const newest = await store.queryLogs({ functionName: 'my-function', limit: 3 });
        assert.deepEqual(newest.map((r) => r.message), ['line 7', 'line 8', 'line 9']);
        const combined = await store.queryLogs({ functionName: 'my-function', sinceMs: 1002, limit: 100 });
        assert.equal(combined.length, 8);
      });

      it('returns at most 1000 records by default', async () => {
        await store.appendLogs(logsOf(1001));
        const records = await store.queryLogs({ functionName: 'my-function' });
        assert.equal(records.length, 1000);
        assert.equal(records[0].message, 'line 1');
        assert.equal(records[999].message, 'line 1000');
      });

      it('rejects an invalid limit', async () => {
        for (const limit of [0, -5, 2.5]) {
          await rejectsWith(
            store.queryLogs({ functionName: 'my-function', limit }),
            InvalidParameterValueException,
            /limit/,
          );
        }
      });

      it('writes a batch atomically: a bad record leaves nothing behind', async () => {
        await store.appendLogs(logsOf(1));
        const bad = makeLogRecord({ message: null as unknown as string });
        await assert.rejects(store.appendLogs([...logsOf(3, { functionName: 'other' }), ...logsOf(2), bad]));
        assert.equal((await store.queryLogs({ functionName: 'my-function' })).length, 1);
        assert.deepEqual(await store.queryLogs({ functionName: 'other' }), []);
      });
    });

    describe('log retention', () => {
      let small: Store;
      beforeEach(async () => {
        small = await makeStore({ logRetentionPerFunction: 5 });
      });
      afterEach(async () => {
        await small.close();
      });

      it('keeps the newest records per function across batches', async () => {
        await small.appendLogs(logsOf(3));
        await small.appendLogs(logsOf(4, { message: 'second' }));
        const kept = await small.queryLogs({ functionName: 'my-function' });
        assert.deepEqual(kept.map((r) => r.message), ['line 2', 'second', 'second', 'second', 'second']);
      });

      it('trims a single batch larger than the limit, per function', async () => {
        await small.appendLogs([...logsOf(12), ...logsOf(3, { functionName: 'quiet' })]);
        const kept = await small.queryLogs({ functionName: 'my-function' });
        assert.deepEqual(kept.map((r) => r.message), ['line 7', 'line 8', 'line 9', 'line 10', 'line 11']);
        assert.equal((await small.queryLogs({ functionName: 'quiet' })).length, 3);
      });

      it('starts counting afresh after the function is deleted', async () => {
        await small.createFunction(makeFunctionRecord());
        await small.appendLogs(logsOf(5));
        await small.deleteFunction('my-function');
        await small.appendLogs(logsOf(4));
        assert.equal((await small.queryLogs({ functionName: 'my-function' })).length, 4);
        await small.appendLogs(logsOf(1, { message: 'newest' }));
        const kept = await small.queryLogs({ functionName: 'my-function' });
        assert.equal(kept.length, 5);
        assert.equal(kept[4].message, 'newest');
      });
    });

    describe('resources', () => {
      it('puts, gets, overwrites and deletes a keyed record', async () => {
        assert.equal(await store.putResource('alias', 'fn/live', { v: 1, nested: { a: [1, 2] } }), true);
        assert.deepEqual(await store.getResource('alias', 'fn/live'), { v: 1, nested: { a: [1, 2] } });
        assert.equal(await store.getResource('other-kind', 'fn/live'), undefined);
        await store.putResource('alias', 'fn/live', { v: 2 });
        assert.deepEqual(await store.getResource('alias', 'fn/live'), { v: 2 });
        assert.equal(await store.deleteResource('alias', 'fn/live'), true);
        assert.equal(await store.deleteResource('alias', 'fn/live'), false);
        assert.equal(await store.getResource('alias', 'fn/live'), undefined);
      });

      it('ifAbsent refuses to overwrite', async () => {
        assert.equal(await store.putResource('layer', 'l/1', { first: true }, { ifAbsent: true }), true);
        assert.equal(await store.putResource('layer', 'l/1', { first: false }, { ifAbsent: true }), false);
        assert.deepEqual(await store.getResource('layer', 'l/1'), { first: true });
      });

      it('lists by prefix in key order, paged, and deletes by prefix', async () => {
        for (const key of ['b/0002', 'a/0001', 'b/0001', 'b/0010', 'bb/0001']) await store.putResource('version', key, { key });
        const all = await store.listResources<{ key: string }>('version', { prefix: 'b/' });
        assert.deepEqual(all.items.map((i) => i.key), ['b/0001', 'b/0002', 'b/0010']);
        assert.equal(all.nextMarker, undefined);
        const first = await store.listResources('version', { prefix: 'b/', maxItems: 2 });
        assert.deepEqual(first.items.map((i) => i.key), ['b/0001', 'b/0002']);
        assert.ok(first.nextMarker);
        const second = await store.listResources('version', { prefix: 'b/', maxItems: 2, marker: first.nextMarker });
        assert.deepEqual(second.items.map((i) => i.key), ['b/0010']);
        assert.equal(second.nextMarker, undefined);
        await rejectsWith(store.listResources('version', { marker: 'garbage' }), InvalidParameterValueException, /Invalid Marker/);
        assert.equal(await store.deleteResources('version', 'b/'), 3);
        assert.deepEqual((await store.listResources('version')).items.map((i) => i.key), ['a/0001', 'bb/0001']);
      });
    });

    describe('async queue', () => {
      const event = (id: string, dueMs: number) => ({
        id,
        functionName: 'fn',
        payload: Buffer.from(`{"id":"${id}"}`),
        enqueuedAtMs: 1000,
        nextAttemptAtMs: dueMs,
        attempts: 0,
        throttles: 0,
      });

      it('claims due events oldest first, exclusively, and completes them', async () => {
        await store.enqueueAsync(event('b', 2000));
        await store.enqueueAsync({ ...event('a', 1500), qualifier: 'live' });
        await store.enqueueAsync(event('later', 9000));
        assert.equal(await store.asyncDepth(), 3);
        assert.equal(await store.nextDueAsync(), 1500);
        const claimed = await store.claimDueAsync(5000, 10);
        assert.deepEqual(claimed.map((e) => e.id), ['a', 'b']);
        assert.equal(claimed[0]!.qualifier, 'live');
        assert.deepEqual(claimed[0]!.payload, Buffer.from('{"id":"a"}'));
        assert.deepEqual(await store.claimDueAsync(5000, 10), [], 'claimed events are not claimed twice');
        await store.completeAsync('a');
        await store.rescheduleAsync('b', 7000, 1, 0);
        assert.equal(await store.nextDueAsync(), 7000);
        const again = await store.claimDueAsync(8000, 10);
        assert.deepEqual(again.map((e) => [e.id, e.attempts]), [['b', 1]]);
        assert.equal(await store.asyncDepth(), 2);
      });

      it('recovers in-flight events after a crash', async () => {
        await store.enqueueAsync(event('x', 1000));
        assert.equal((await store.claimDueAsync(2000, 10)).length, 1);
        assert.equal(await store.recoverAsync(), 1);
        assert.deepEqual((await store.claimDueAsync(2000, 10)).map((e) => e.id), ['x']);
      });
    });

    describe('close', () => {
      it('is idempotent, and later calls reject', async () => {
        const other = await makeStore();
        await other.close();
        await other.close();
        await assert.rejects(other.getFunction('x'));
        await assert.rejects(other.appendLogs(logsOf(1)));
      });
    });
  });
}
