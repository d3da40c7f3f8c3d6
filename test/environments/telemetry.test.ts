/**
 * The Telemetry API's parts in process: subscription validation with Lambda's defaults,
 * ranges and messages; a subscriber's buffer against a real HTTP listener (batches by
 * maxItems and timeoutMs, one delivery at a time, bounded memory with counted drops and
 * platform.logsDropped when it keeps up again, retries, a dead destination); and the hub's
 * replay of Init to late subscribers and its Logs API forms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseSubscription, type Subscription } from '../../src/environments/telemetry-api.ts';
import { TelemetrySubscriber, slowConsumerReason } from '../../src/environments/telemetry-buffer.ts';
import { TelemetryHub } from '../../src/environments/telemetry-hub.ts';

const body = (v: unknown) => Buffer.from(JSON.stringify(v));
const good = { schemaVersion: '2022-12-13', types: ['platform', 'function'], destination: { protocol: 'HTTP', URI: 'http://sandbox.localdomain:4243/events?x=1' } };

test('subscription: defaults, the sandbox address, and each rule broken', () => {
  const sub = parseSubscription('telemetry', body(good), false) as Subscription;
  assert.deepEqual(sub, {
    api: 'telemetry',
    schemaVersion: '2022-12-13',
    types: ['platform', 'function'],
    destination: { host: '127.0.0.1', port: 4243, path: '/events?x=1' },
    maxItems: 10_000,
    maxBytes: 262_144,
    timeoutMs: 1000,
  });
  const withBuffering = parseSubscription('telemetry', body({ ...good, buffering: { maxItems: 1000, maxBytes: 1_048_576, timeoutMs: 25 } }), false) as Subscription;
  assert.deepEqual([withBuffering.maxItems, withBuffering.maxBytes, withBuffering.timeoutMs], [1000, 1_048_576, 25]);
  for (const host of ['sandbox', 'localhost', '127.0.0.1']) {
    assert.equal((parseSubscription('telemetry', body({ ...good, destination: { protocol: 'HTTP', URI: `http://${host}:9/` } }), false) as Subscription).destination.port, 9);
  }
  const refused = (api: 'telemetry' | 'logs', v: unknown, managed = false) => {
    const out = parseSubscription(api, Buffer.isBuffer(v) ? v : body(v), managed);
    assert.ok(!('api' in out), JSON.stringify(v));
    assert.equal(out.status, 400);
    return (out.body as { errorType: string; errorMessage: string });
  };
  assert.deepEqual(refused('telemetry', { ...good, types: [], destination: { protocol: 'HTTP', URI: 'http://sandbox.localdomain/' } }), {
    errorType: 'ValidationError',
    errorMessage: 'types should not be empty; URI port is not provided',
  });
  assert.equal(refused('telemetry', { types: ['platform'], destination: good.destination }).errorMessage, 'schemaVersion is not provided');
  assert.equal(refused('telemetry', { ...good, types: ['platform', 'runtime'] }).errorMessage, 'types should only contain platform, function, extension');
  assert.equal(refused('telemetry', { ...good, destination: undefined }).errorMessage, 'destination is required');
  assert.equal(refused('telemetry', { ...good, destination: { protocol: 'UDP', URI: 'x' } }).errorMessage, 'destination protocol should be HTTP or TCP');
  assert.equal(refused('telemetry', { ...good, destination: { protocol: 'HTTP' } }).errorMessage, 'URI is not provided');
  assert.equal(refused('telemetry', { ...good, destination: { protocol: 'HTTP', URI: 'not a url' } }).errorMessage, 'URI is not a valid URL');
  assert.equal(refused('telemetry', { ...good, destination: { protocol: 'HTTP', URI: 'http://sandbox.localdomain:0/' } }).errorMessage, 'URI port should be from 1 to 65535');
  assert.equal(refused('telemetry', { ...good, destination: { protocol: 'HTTP', URI: 'http://sandbox.localdomain:70000/' } }).errorMessage, 'URI is not a valid URL');
  assert.equal(refused('telemetry', { ...good, destination: { protocol: 'HTTP', URI: 'http://169.254.169.254:8080/' } }).errorMessage, 'URI host should be sandbox.localdomain');
  assert.equal(refused('telemetry', { ...good, buffering: 'fast' }).errorMessage, 'buffering should be an object');
  assert.equal(refused('telemetry', { ...good, buffering: { maxItems: 10_001, timeoutMs: 24.5 } }).errorMessage, 'buffering.maxItems should be an integer from 1000 to 10000; buffering.timeoutMs should be an integer from 25 to 30000');
  assert.match(refused('telemetry', Buffer.from('{"schemaVersion":')).errorMessage, /^failed to parse JSON: /);
  assert.equal(refused('telemetry', null).errorMessage, 'the request body should be a JSON object');
  // Managed instances: the 2025-01-29 schema only, and no Logs API.
  assert.equal(refused('telemetry', good, true).errorMessage, 'schemaVersion should be one of 2025-01-29');
  assert.equal((parseSubscription('telemetry', body({ ...good, schemaVersion: '2025-01-29' }), true) as Subscription).schemaVersion, '2025-01-29');
  assert.equal(refused('logs', good, true).errorType, 'Logs.ValidationError');
  // The Logs API: its own schemas (2020-08-15 when not given) and error type.
  assert.equal((parseSubscription('logs', body({ ...good, schemaVersion: undefined }), false) as Subscription).schemaVersion, '2020-08-15');
  assert.deepEqual(refused('logs', good), { errorType: 'Logs.ValidationError', errorMessage: 'schemaVersion should be one of 2020-08-15, 2021-03-18' });
});

/** A subscriber's destination: records batches; answers after `delayMs`, or with `status`. */
async function listener(options: { delayMs?: number; status?: number } = {}) {
  const batches: unknown[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = http.createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      batches.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[]);
      setTimeout(() => {
        inFlight--;
        res.statusCode = options.status ?? 200;
        res.end('OK');
      }, options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    batches,
    maxInFlight: () => maxInFlight,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const logsDropped = (droppedBytes: number, droppedRecords: number, reason: string) => JSON.stringify({ type: 'platform.logsDropped', record: { droppedBytes, droppedRecords, reason } });
const until = async (check: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('batches: by maxItems at once, by timeoutMs otherwise; a JSON array POSTed to the path', async () => {
  const l = await listener();
  const sub = new TelemetrySubscriber({ name: 't', destination: { host: '127.0.0.1', port: l.port, path: '/p' }, maxItems: 1000, maxBytes: 262_144, timeoutMs: 100, logsDropped });
  try {
    for (let i = 0; i < 1000; i++) sub.push(JSON.stringify({ i }));
    await until(() => l.batches.length === 1);
    assert.equal(l.batches[0]!.length, 1000, 'a full batch goes without waiting for the timeout');
    sub.push('{"late":true}');
    const t0 = Date.now();
    await until(() => l.batches.length === 2);
    assert.ok(Date.now() - t0 >= 80, 'a partial batch waits for timeoutMs');
    assert.deepEqual(l.batches[1], [{ late: true }]);
  } finally {
    sub.close();
    await l.close();
  }
});

test('a slow subscriber: one delivery at a time, bounded buffer, drops counted, then platform.logsDropped', async () => {
  const l = await listener({ delayMs: 300 });
  const sub = new TelemetrySubscriber({ name: 'slow', destination: { host: '127.0.0.1', port: l.port, path: '/' }, maxItems: 1000, maxBytes: 262_144, timeoutMs: 25, logsDropped });
  try {
    const total = 20_000;
    for (let i = 0; i < total; i++) sub.push(JSON.stringify({ i }));
    // Kept: the batch in flight, one waiting, the one filling; the rest is dropped.
    await until(() => l.batches.some((b) => b.some((e) => (e as { type?: string }).type === 'platform.logsDropped')), 10_000);
    assert.equal(l.maxInFlight(), 1);
    const events = l.batches.flat() as Array<{ i?: number; type?: string; record?: { droppedRecords: number; droppedBytes: number; reason: string } }>;
    const delivered = events.filter((e) => e.i !== undefined).length;
    const dropped = events.find((e) => e.type === 'platform.logsDropped')!.record!;
    assert.ok(delivered <= 3000, `delivered ${delivered}`);
    assert.equal(delivered + dropped.droppedRecords, total);
    assert.ok(dropped.droppedBytes > 0);
    assert.equal(dropped.reason, slowConsumerReason);
  } finally {
    sub.close();
    await l.close();
  }
});

test('a dead destination: retried, then dropped; no connection left behind after close', async () => {
  const l = await listener({ status: 500 });
  const sub = new TelemetrySubscriber({ name: 'dead', destination: { host: '127.0.0.1', port: l.port, path: '/' }, maxItems: 1000, maxBytes: 262_144, timeoutMs: 25, logsDropped, retryDelaysMs: [10, 10] });
  try {
    sub.push('{"a":1}');
    await until(() => l.batches.length === 3);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(l.batches.length, 3, 'three attempts, then the batch is dropped');
    assert.equal(sub.delivered, 0);
  } finally {
    sub.close();
    await l.close();
  }
  sub.push('{"after":"close"}'); // ignored, no timer, no socket
});

test('the hub replays Init to a late subscriber, then stops keeping; Logs API subscribers get their own forms', async () => {
  const l = await listener();
  const hub = new TelemetryHub('Text');
  try {
    assert.equal(hub.active, true, 'subscriptions are open during Init');
    hub.platform('platform.initStart', { initializationType: 'on-demand', phase: 'init', functionName: 'f', functionVersion: '$LATEST' });
    hub.log('function', 'init line', Date.now());
    const destination = { host: '127.0.0.1', port: l.port, path: '/' };
    hub.subscribe('tel', { api: 'telemetry', schemaVersion: '2022-12-13', types: ['platform', 'function'], destination, maxItems: 1000, maxBytes: 262_144, timeoutMs: 25 });
    hub.subscribe('logs', { api: 'logs', schemaVersion: '2020-08-15', types: ['platform'], destination: { ...destination, path: '/logs' }, maxItems: 1000, maxBytes: 262_144, timeoutMs: 25 });
    hub.closeSubscriptions();
    hub.platform('platform.start', { requestId: 'r1', version: '$LATEST', tracing: { type: 'X-Amzn-Trace-Id', value: 'Root=1' } });
    hub.platform('platform.runtimeDone', { requestId: 'r1', status: 'success' });
    hub.logsApiPlatform('platform.end', { requestId: 'r1' });
    await new Promise((r) => setTimeout(r, 200));
    const all = l.batches.flat() as Array<{ type: string; record: unknown }>;
    const types = all.map((e) => e.type);
    assert.deepEqual(types.filter((t, i) => types.indexOf(t) === i).sort(), ['function', 'platform.end', 'platform.initStart', 'platform.logsSubscription', 'platform.runtimeDone', 'platform.start', 'platform.telemetrySubscription'].sort());
    // The telemetry subscriber: Init replayed, no Logs API events.
    assert.ok(all.some((e) => e.type === 'function' && e.record === 'init line'));
    assert.equal(all.filter((e) => e.type === 'platform.initStart').length, 1, 'the Logs API has no initStart');
    assert.deepEqual(all.find((e) => e.type === 'platform.start' && Object.keys(e.record as object).length === 1)!.record, { requestId: 'r1' });
    assert.equal(all.filter((e) => e.type === 'platform.runtimeDone').length, 1, 'the Logs API has runtimeDone with schema 2021-03-18 only');
  } finally {
    hub.close();
    await l.close();
  }
  assert.equal(hub.active, false);
});

test('what Init keeps for late subscribers is bounded; what did not fit is reported as dropped', async () => {
  const l = await listener();
  const hub = new TelemetryHub('Text');
  try {
    const total = 2000;
    const line = 'x'.repeat(3000);
    for (let i = 0; i < total; i++) hub.log('function', `${i} ${line}`, Date.now());
    hub.subscribe('late', { api: 'telemetry', schemaVersion: '2022-12-13', types: ['platform', 'function'], destination: { host: '127.0.0.1', port: l.port, path: '/' }, maxItems: 10_000, maxBytes: 1_048_576, timeoutMs: 25 });
    await until(() => {
      const all = l.batches.flat() as Array<{ type: string; record: { droppedRecords?: number } }>;
      const received = all.filter((e) => e.type === 'function').length;
      const dropped = all.filter((e) => e.type === 'platform.logsDropped').reduce((n, e) => n + e.record.droppedRecords!, 0);
      return received + dropped === total;
    });
    const all = l.batches.flat() as Array<{ type: string; record: { reason?: string } }>;
    assert.ok(all.some((e) => e.type === 'platform.logsDropped' && e.record.reason === 'Some logs were dropped because the Init phase produced more than the buffer holds'));
    assert.ok(all.filter((e) => e.type === 'function').length < total);
  } finally {
    hub.close();
    await l.close();
  }
});
