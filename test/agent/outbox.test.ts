import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox } from '../../src/agent/outbox.ts';
import { BackendSendError } from '../../src/agent/backends/http-post.ts';
import type { AgentResource, LogRecord, MetricPoint, Span, TelemetryBackend, TelemetryBatch } from '../../src/agent/model.ts';

const resource: AgentResource = {
  functionName: 'orders',
  functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:orders',
  version: '$LATEST',
  region: 'us-east-1',
  accountId: '123456789012',
  runtime: 'nodejs20.x',
  memorySize: 128,
  architecture: 'x86_64',
  extensionVersion: '0.1.0',
  tags: ['service:orders'],
};

function metric(n: number): MetricPoint {
  return { name: `m${n}`, type: 'count', value: n, tags: [], timestamp: 1_700_000_000_000 + n };
}

function log(n: number): LogRecord {
  return { timestamp: 1_700_000_000_000 + n, source: 'function', message: `line ${n}` };
}

function span(n: number): Span {
  return {
    traceId: '0'.repeat(31) + '1',
    spanId: n.toString(16).padStart(16, '0'),
    name: `s${n}`,
    service: 'orders',
    resource: 'r',
    startMicros: n,
    durationMicros: 1,
    error: false,
    meta: {},
    metrics: {},
  };
}

/** A backend that records what it accepted; `failures` sends fail first (with `error` when given). */
class RecordingBackend implements TelemetryBackend {
  readonly name: string;
  readonly batches: TelemetryBatch[] = [];
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  failures: number;
  error: () => unknown;
  /** When set, each send waits for this before answering. */
  gate: Promise<void> | undefined;

  constructor(name: string, failures = 0, error: () => unknown = () => new Error(`${name} is down`)) {
    this.name = name;
    this.failures = failures;
    this.error = error;
  }

  async send(batch: TelemetryBatch): Promise<void> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) await this.gate;
      if (this.failures > 0) {
        this.failures--;
        throw this.error();
      }
      this.batches.push(batch);
    } finally {
      this.inFlight--;
    }
  }

  delivered<K extends 'metrics' | 'logs' | 'spans' | 'security'>(kind: K): TelemetryBatch[K][number][] {
    return this.batches.flatMap((b) => b[kind] as TelemetryBatch[K][number][]);
  }
}

function outbox(backends: TelemetryBackend[], options: { maxBuffered?: number; sendTimeoutMs?: number; now?: () => number } = {}) {
  const errors: string[] = [];
  const box = new Outbox({
    resource,
    backends,
    maxBuffered: options.maxBuffered ?? 100,
    sendTimeoutMs: options.sendTimeoutMs ?? 5000,
    now: options.now,
    onError: (message) => errors.push(message),
  });
  return { box, errors };
}

describe('Outbox', () => {
  test('a flush sends one batch with the resource, the items, drop counts and the time', async () => {
    const backend = new RecordingBackend('a');
    const { box } = outbox([backend], { now: () => 42 });
    box.addMetric(metric(1));
    box.addSpans([span(1), span(2)]);
    box.addLog(log(1));
    box.addSecurity({
      timestamp: 1,
      requestId: 'r',
      ruleId: 'crs-942-100',
      ruleName: 'SQLi',
      category: 'sql_injection',
      parameter: 'server.request.query.q',
      value: "' OR 1=1",
      trigger: 'function-url',
      blocked: false,
    });
    assert.equal(box.pending(), 5);
    const result = await box.flush();
    assert.equal(backend.batches.length, 1);
    const [batch] = backend.batches;
    assert.equal(batch.resource, resource);
    assert.deepEqual(batch.metrics, [metric(1)]);
    assert.deepEqual(batch.spans, [span(1), span(2)]);
    assert.deepEqual(batch.logs, [log(1)]);
    assert.equal(batch.security[0].ruleId, 'crs-942-100');
    assert.deepEqual(batch.dropped, { metrics: 0, spans: 0, logs: 0, security: 0 });
    assert.equal(batch.sentAt, 42);
    assert.deepEqual(result.collected, { metrics: 1, spans: 2, logs: 1, security: 1 });
    assert.deepEqual(result.backends, [
      { backend: 'a', ok: true, sent: { metrics: 1, spans: 2, logs: 1, security: 1 }, pending: 0, dropped: { metrics: 0, spans: 0, logs: 0, security: 0 } },
    ]);
    assert.equal(box.pending(), 0);
  });

  test('with nothing to send, flush resolves without calling any backend', async () => {
    const backend = new RecordingBackend('a');
    const { box } = outbox([backend]);
    const result = await box.flush();
    assert.equal(backend.calls, 0);
    assert.deepEqual(result.backends, []);
  });

  test('metric sources are collected at flush time; a failing source is reported and the rest still goes', async () => {
    const backend = new RecordingBackend('a');
    const errors: string[] = [];
    const box = new Outbox({
      resource,
      backends: [backend],
      sources: [
        { collect: (now) => [{ ...metric(7), timestamp: now }] },
        {
          collect: () => {
            throw new Error('aggregator exploded');
          },
        },
      ],
      maxBuffered: 10,
      sendTimeoutMs: 1000,
      now: () => 5,
      onError: (m) => errors.push(m),
    });
    box.addLog(log(1));
    await box.flush();
    assert.deepEqual(backend.delivered('metrics'), [{ ...metric(7), timestamp: 5 }]);
    assert.deepEqual(backend.delivered('logs'), [log(1)]);
    assert.equal(errors.length, 1);
    assert.match(errors[0], /aggregator exploded/);
  });

  test('the intake keeps the newest maxBuffered items of each kind and counts the rest', async () => {
    const backend = new RecordingBackend('a');
    const { box } = outbox([backend], { maxBuffered: 3 });
    for (let i = 1; i <= 5; i++) box.addMetric(metric(i));
    for (let i = 1; i <= 4; i++) box.addLog(log(i));
    box.addSpans([span(1), span(2), span(3), span(4), span(5), span(6)]);
    assert.deepEqual(box.dropped(), { metrics: 2, spans: 3, logs: 1, security: 0 });
    await box.flush();
    assert.deepEqual(backend.delivered('metrics').map((m) => m.name), ['m3', 'm4', 'm5']);
    assert.deepEqual(backend.delivered('logs').map((l) => l.message), ['line 2', 'line 3', 'line 4']);
    assert.deepEqual(backend.delivered('spans').map((s) => s.name), ['s4', 's5', 's6']);
    assert.deepEqual(backend.batches[0].dropped, { metrics: 2, spans: 3, logs: 1, security: 0 });
  });

  test('a backend that fails N times then recovers gets every item exactly once, in order', async () => {
    const backend = new RecordingBackend('flaky', 3);
    const { box, errors } = outbox([backend]);
    let next = 1;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 4; i++) {
        box.addMetric(metric(next));
        box.addLog(log(next));
        next++;
      }
      const result = await box.flush();
      assert.equal(result.backends[0].ok, round >= 3, `round ${round}`);
      if (round < 3) assert.equal(result.backends[0].pending, 8 * (round + 1));
    }
    const expected = Array.from({ length: next - 1 }, (_, i) => i + 1);
    assert.deepEqual(backend.delivered('metrics').map((m) => m.value), expected);
    assert.deepEqual(backend.delivered('logs').map((l) => l.message), expected.map((n) => `line ${n}`));
    assert.equal(backend.batches.length, 3, 'the held items went out with the first successful flush');
    assert.equal(errors.length, 3);
    assert.match(errors[0], /flaky failed; keeping 8 items/);
    assert.equal(box.pending(), 0);
  });

  test('a dead backend keeps at most maxBuffered per kind; the exact drop counts arrive with the next batch', async () => {
    const backend = new RecordingBackend('dead', 3);
    const { box } = outbox([backend], { maxBuffered: 5 });
    for (let i = 1; i <= 3; i++) box.addMetric(metric(i));
    await box.flush(); // fails: holds m1..m3
    for (let i = 4; i <= 7; i++) box.addMetric(metric(i));
    box.addLog(log(1));
    let result = await box.flush(); // fails: m1..m7 is 7 > 5, so m1 and m2 go; holds m3..m7 and the log
    assert.deepEqual(result.backends[0].dropped, { metrics: 2, spans: 0, logs: 0, security: 0 });
    for (let i = 8; i <= 10; i++) box.addMetric(metric(i));
    result = await box.flush(); // fails: m3..m10 is 8, so m3..m5 go too
    assert.equal(result.backends[0].pending, 6);
    assert.deepEqual(box.dropped('dead'), { metrics: 5, spans: 0, logs: 0, security: 0 });
    assert.deepEqual(box.dropped(), { metrics: 0, spans: 0, logs: 0, security: 0 }, 'the intake itself lost nothing');

    box.addMetric(metric(11)); // recovered now: m7..m11 (m6 makes room for m11)
    result = await box.flush();
    assert.equal(result.backends[0].ok, true);
    assert.equal(backend.batches.length, 1);
    const [batch] = backend.batches;
    assert.deepEqual(batch.metrics.map((m) => m.value), [7, 8, 9, 10, 11]);
    assert.deepEqual(batch.logs, [log(1)]);
    assert.deepEqual(batch.dropped, { metrics: 6, spans: 0, logs: 0, security: 0 });
  });

  test('two backends, one dead: the live one gets everything once, the dead one keeps its own copy', async () => {
    const live = new RecordingBackend('live');
    const dead = new RecordingBackend('dead', Infinity);
    const { box } = outbox([live, dead], { maxBuffered: 4 });
    for (let round = 0; round < 3; round++) {
      box.addMetric(metric(round * 2 + 1));
      box.addMetric(metric(round * 2 + 2));
      const result = await box.flush();
      const byName = Object.fromEntries(result.backends.map((r) => [r.backend, r]));
      assert.equal(byName.live.ok, true);
      assert.equal(byName.dead.ok, false);
      assert.match(byName.dead.error ?? '', /dead is down/);
    }
    assert.deepEqual(live.delivered('metrics').map((m) => m.value), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(live.batches.map((b) => b.dropped.metrics), [0, 0, 0], "the dead backend's drops are its own");
    assert.deepEqual(box.dropped('dead'), { metrics: 2, spans: 0, logs: 0, security: 0 });
    assert.deepEqual(box.dropped('live'), { metrics: 0, spans: 0, logs: 0, security: 0 });
    assert.equal(box.pending(), 4);

    dead.failures = 0;
    await box.flush();
    assert.deepEqual(dead.delivered('metrics').map((m) => m.value), [3, 4, 5, 6]);
    assert.equal(dead.batches[0].dropped.metrics, 2);
    assert.equal(live.batches.length, 3, 'the live backend was not called: it had nothing new');
  });

  test('a permanent refusal drops the batch, counts it, and never retries it', async () => {
    const backend = new RecordingBackend('strict', 1, () => new BackendSendError('400 bad batch', { permanent: true, status: 400 }));
    const { box, errors } = outbox([backend]);
    box.addMetric(metric(1));
    box.addLog(log(1));
    const result = await box.flush();
    assert.equal(result.backends[0].permanent, true);
    assert.equal(result.backends[0].pending, 0);
    assert.deepEqual(box.dropped('strict'), { metrics: 1, spans: 0, logs: 1, security: 0 });
    assert.match(errors[0], /refused the batch for good/);
    box.addMetric(metric(2));
    await box.flush();
    assert.deepEqual(backend.delivered('metrics'), [metric(2)]);
    assert.deepEqual(backend.batches[0].dropped, { metrics: 1, spans: 0, logs: 1, security: 0 });
  });

  test('a partial failure retries only the kinds that were neither accepted nor refused for good', async () => {
    const backend = new RecordingBackend('partial', 1, () => new BackendSendError('logs intake down', { accepted: ['metrics'], rejected: ['spans'] }));
    const { box } = outbox([backend]);
    box.addMetric(metric(1));
    box.addLog(log(1));
    box.addSpans([span(1)]);
    const result = await box.flush();
    assert.deepEqual(result.backends[0].sent, { metrics: 1, spans: 0, logs: 0, security: 0 });
    assert.equal(result.backends[0].pending, 1);
    await box.flush();
    assert.deepEqual(backend.batches.length, 1);
    assert.deepEqual(backend.batches[0].metrics, []);
    assert.deepEqual(backend.batches[0].logs, [log(1)]);
    assert.deepEqual(backend.batches[0].dropped.spans, 1);
  });

  test('a backend that never answers is abandoned after sendTimeoutMs, its send aborted, its items kept', async () => {
    let seenSignal: AbortSignal | undefined;
    const hanging: TelemetryBackend = {
      name: 'hanging',
      send: (_batch, signal) => {
        seenSignal = signal;
        return new Promise<void>(() => {}); // ignores the signal too: the outbox must not wait on it
      },
    };
    const live = new RecordingBackend('live');
    const { box, errors } = outbox([hanging, live], { sendTimeoutMs: 50 });
    box.addMetric(metric(1));
    const result = await box.flush();
    const byName = Object.fromEntries(result.backends.map((r) => [r.backend, r]));
    assert.equal(byName.hanging.ok, false);
    assert.match(byName.hanging.error ?? '', /no answer within 50 ms/);
    assert.equal(byName.hanging.pending, 1);
    assert.equal(byName.live.ok, true);
    assert.equal(seenSignal?.aborted, true);
    assert.match(errors[0], /hanging failed/);
  });

  test('a backend that throws synchronously is a failure like any other', async () => {
    const broken: TelemetryBackend = {
      name: 'broken',
      send: () => {
        throw new TypeError('not a function');
      },
    };
    const { box } = outbox([broken]);
    box.addLog(log(1));
    const result = await box.flush();
    assert.equal(result.backends[0].ok, false);
    assert.match(result.backends[0].error ?? '', /not a function/);
    assert.equal(box.pending(), 1);
  });

  test('flushes never overlap: a flush asked for during another runs after it, later requests share it', async () => {
    const backend = new RecordingBackend('slow');
    let open!: () => void;
    backend.gate = new Promise<void>((resolve) => (open = resolve));
    const { box } = outbox([backend]);
    box.addMetric(metric(1));
    const first = box.flush();
    box.addMetric(metric(2));
    const second = box.flush();
    box.addMetric(metric(3));
    const third = box.flush();
    assert.equal(second, third, 'both wait for the same next flush');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(backend.calls, 1, 'the second flush has not started while the first is in flight');
    open();
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual(a.collected.metrics, 1);
    assert.deepEqual(b.collected.metrics, 2);
    assert.equal(backend.maxInFlight, 1);
    assert.deepEqual(backend.delivered('metrics').map((m) => m.value), [1, 2, 3]);

    backend.gate = undefined;
    box.addMetric(metric(4));
    await box.flush(); // after the queue drained, flush starts at once again
    assert.deepEqual(backend.delivered('metrics').map((m) => m.value), [1, 2, 3, 4]);
  });

  test('an onError that throws neither rejects the flush nor blocks the next one', async () => {
    const dead = new RecordingBackend('dead', 1);
    const box = new Outbox({
      resource,
      backends: [dead],
      maxBuffered: 10,
      sendTimeoutMs: 1000,
      onError: () => {
        throw new Error('logger broke');
      },
    });
    box.addMetric(metric(1));
    const first = await box.flush();
    assert.equal(first.backends[0].ok, false);
    const second = await box.flush();
    assert.equal(second.backends[0].ok, true);
    assert.deepEqual(dead.delivered('metrics'), [metric(1)]);
  });

  test('bad arguments: a non-array of spans is ignored; bad bounds are refused at construction', () => {
    const { box } = outbox([]);
    assert.doesNotThrow(() => box.addSpans('nope' as unknown as Span[]));
    assert.equal(box.pending(), 0);
    assert.throws(() => new Outbox({ resource, backends: [], maxBuffered: 0, sendTimeoutMs: 1 }), /maxBuffered must be a positive integer/);
    assert.throws(() => new Outbox({ resource, backends: [], maxBuffered: 1.5, sendTimeoutMs: 1 }), /maxBuffered must be a positive integer/);
    assert.throws(() => new Outbox({ resource, backends: [], maxBuffered: 1, sendTimeoutMs: 0 }), /sendTimeoutMs must be positive/);
  });
});

describe('Outbox under a burst', () => {
  test('asks for a flush once when an intake buffer is half full, and again only after a flush took it', async () => {
    const sent: number[] = [];
    let asked = 0;
    const resource = { functionName: 'f', functionArn: 'arn', version: '$LATEST', region: 'us-east-1', accountId: '0', runtime: 'nodejs24.x', memorySize: 128, architecture: 'x86_64' as const, extensionVersion: '1', tags: [] };
    const outbox = new Outbox({
      resource,
      backends: [{ name: 'counting', send: async (batch) => void sent.push(batch.logs.length) }],
      maxBuffered: 10,
      sendTimeoutMs: 1000,
      onFilling: () => asked++,
    });
    const log = (i: number) => ({ timestamp: i, source: 'function' as const, message: `line ${i}` });
    for (let i = 0; i < 4; i++) outbox.addLog(log(i));
    assert.equal(asked, 0, 'under half: no call');
    outbox.addLog(log(4));
    assert.equal(asked, 1, 'half full: one call');
    for (let i = 5; i < 9; i++) outbox.addLog(log(i));
    assert.equal(asked, 1, 'not again before a flush');
    await outbox.flush();
    assert.deepEqual(sent, [9]);
    for (let i = 0; i < 5; i++) outbox.addLog(log(i));
    assert.equal(asked, 2, 'again after the flush took the intake');
  });
});
