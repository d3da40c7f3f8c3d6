import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import StatsD from 'hot-shots';
import { parseDogStatsD } from '../../src/agent/dogstatsd/parser.ts';
import { DogStatsDAggregator } from '../../src/agent/dogstatsd/aggregator.ts';
import type { DogStatsDSample } from '../../src/agent/dogstatsd/parser.ts';
import { startDogStatsD } from '../../src/agent/dogstatsd/server.ts';
import type { MetricPoint } from '../../src/agent/model.ts';

/** Counts samples as they arrive, so tests wait for delivery instead of sleeping. */
class CountingAggregator extends DogStatsDAggregator {
  received = 0;
  override add(samples: DogStatsDSample[], nowMs?: number): void {
    this.received += samples.length;
    super.add(samples, nowMs);
  }
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function find(points: MetricPoint[], name: string, tags?: string[]): MetricPoint {
  const point = points.find((p) => p.name === name && (!tags || p.tags.join(',') === tags.join(',')));
  assert.ok(point, `no point ${name} ${tags?.join(',') ?? ''} in ${JSON.stringify(points)}`);
  return point;
}

function sendRaw(port: number, packet: Buffer | string): Promise<void> {
  const socket = createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.send(packet, port, '127.0.0.1', (error) => {
      socket.close();
      if (error) reject(error);
      else resolve();
    });
  });
}

describe('parseDogStatsD', () => {
  test('parses every metric type with rate, tags, timestamp and container', () => {
    const { samples, errors } = parseDogStatsD(
      'page.views:1|c|@0.5|#env:prod,route:/a\n' +
        'temp:+3|g\n' +
        'lat:1.5:2.5|d|#a\n' +
        'h:7|h\n' +
        'rt:12|ms|T1700000000\n' +
        'users:alice|s|c:abc123\n',
    );
    assert.deepEqual(errors, []);
    assert.equal(samples.length, 6);
    assert.deepEqual(samples[0], { name: 'page.views', type: 'c', values: [1], sampleRate: 0.5, tags: ['env:prod', 'route:/a'] });
    assert.deepEqual(samples[1].relative, [true]);
    assert.deepEqual(samples[2].values, [1.5, 2.5]);
    assert.equal(samples[4].timestampMs, 1_700_000_000_000);
    assert.equal(samples[5].setValue, 'alice');
    assert.equal(samples[5].container, 'abc123');
  });

  test('ignores events, service checks and blank lines without reporting errors', () => {
    const { samples, errors } = parseDogStatsD('_e{5,4}:title|text|#a\n_sc|check|0\n\nok:1|c\n');
    assert.deepEqual(errors, []);
    assert.equal(samples.length, 1);
  });

  test('reports each malformed line with its reason and keeps the good ones', () => {
    const { samples, errors } = parseDogStatsD(
      ['novalue', 'name:1', ':1|c', 'x:abc|c', 'x:1|zz', 'x:1|c|@2', 'x:1|c|@0', 'x:|c', 'x:1|', 'x:1|c|Tsoon', 'x:Infinity|g', 'x:1e400|c', 'good:2|c'].join('\n'),
    );
    assert.equal(samples.length, 1);
    assert.equal(samples[0].name, 'good');
    assert.equal(errors.length, 12);
    assert.match(errors[0], /^no metric type/);
    assert.match(errors[1], /^no metric type/);
    assert.match(errors[2], /^empty metric name/);
    assert.match(errors[3], /^bad value "abc"/);
    assert.match(errors[4], /^unknown metric type "zz"/);
    assert.match(errors[5], /^bad sample rate/);
    assert.match(errors[6], /^bad sample rate/);
    assert.match(errors[7], /^empty value/);
    assert.match(errors[8], /^no metric type/);
    assert.match(errors[9], /^bad timestamp/);
    assert.match(errors[10], /^bad value/);
    assert.match(errors[11], /^bad value/);
  });

  test('rejects only the lines with invalid UTF-8', () => {
    const packet = Buffer.concat([Buffer.from('a:1|c\nb'), Buffer.from([0xff, 0xfe]), Buffer.from(':1|c\nc:2|c')]);
    const { samples, errors } = parseDogStatsD(packet);
    assert.deepEqual(samples.map((s) => s.name), ['a', 'c']);
    assert.equal(errors.length, 1);
    assert.match(errors[0], /invalid UTF-8/);
  });

  test('quotes at most a prefix of a huge bad line', () => {
    const { errors } = parseDogStatsD('x'.repeat(100_000));
    assert.equal(errors.length, 1);
    assert.ok(errors[0].length < 200);
  });
});

describe('DogStatsDAggregator', () => {
  test('aggregates each type per context with sorted tags', () => {
    const aggregator = new DogStatsDAggregator();
    const { samples } = parseDogStatsD(
      'c:1|c|@0.5|#b,a\nc:2|c|#a,b\nc:5|c|#other\n' +
        'g:10|g\ng:+5|g\ng:-3|g\n' +
        's:x|s\ns:y|s\ns:x|s\n' +
        'd:1|d\nd:3|h|@0.25\nd:2|ms\n' +
        'u:1:2|d\n',
    );
    aggregator.add(samples, 1000);
    const points = aggregator.collect(2000);
    assert.equal(find(points, 'c', ['a', 'b']).value, 4);
    assert.equal(find(points, 'c', ['other']).value, 5);
    assert.equal(find(points, 'g').value, 12);
    assert.equal(find(points, 's').value, 2);
    const dist = find(points, 'd');
    assert.equal(dist.type, 'distribution');
    assert.deepEqual(dist.values, [1, 3, 2]);
    assert.deepEqual(dist.weights, [1, 4, 1]);
    assert.equal(dist.value, 6);
    const unweighted = find(points, 'u');
    assert.deepEqual(unweighted.values, [1, 2]);
    assert.equal(unweighted.weights, undefined);
    assert.ok(points.every((p) => p.timestamp === 1000));
    assert.deepEqual(aggregator.collect(3000), [], 'collect resets the interval');
  });

  test('applies a relative gauge change to the value set before the last flush', () => {
    const aggregator = new DogStatsDAggregator();
    aggregator.add(parseDogStatsD('g:10|g').samples, 1);
    aggregator.collect(2);
    aggregator.add(parseDogStatsD('g:+1|g').samples, 3);
    assert.equal(find(aggregator.collect(4), 'g').value, 11);
  });

  test('strips excluded tag keys, dedupes tags and keeps sample timestamps apart', () => {
    const aggregator = new DogStatsDAggregator({ excludeTagKeys: ['request_id'] });
    aggregator.add(parseDogStatsD('m:1|c|#request_id:1,z,z\nm:1|c|#request_id:2,z\nm:4|c|#z|T1700000000').samples, 500);
    const points = aggregator.collect(600);
    assert.equal(points.length, 2);
    const now = points.find((p) => p.timestamp === 500);
    const past = points.find((p) => p.timestamp === 1_700_000_000_000);
    assert.deepEqual(now?.tags, ['z']);
    assert.equal(now?.value, 2);
    assert.equal(past?.value, 4);
  });

  test('bounds contexts and counts what it dropped', () => {
    const aggregator = new DogStatsDAggregator({ maxContexts: 2 });
    aggregator.add(parseDogStatsD('a:1|c\nb:1|c\nc:1|c\na:1|c\nd:1|g').samples);
    assert.equal(aggregator.droppedContexts, 2);
    const points = aggregator.collect(0);
    assert.deepEqual(points.map((p) => p.name).sort(), ['a', 'b']);
    assert.equal(find(points, 'a').value, 2);
    aggregator.add(parseDogStatsD('c:1|c').samples);
    assert.equal(aggregator.collect(0).length, 1, 'a new interval has room again');
  });
});

describe('DogStatsD UDP server', () => {
  test('aggregates what the hot-shots client sends', async (t) => {
    const aggregator = new CountingAggregator();
    const server = await startDogStatsD({ host: '127.0.0.1', port: 0, aggregator });
    t.after(() => server.close());
    const errors: Error[] = [];
    const client = new StatsD({
      host: '127.0.0.1',
      port: server.port,
      mock: false,
      includeDatadogTelemetry: false,
      errorHandler: (error) => errors.push(error),
    });

    // hot-shots samples on the client side: make the draw always keep the metric, deterministically.
    const random = Math.random;
    Math.random = () => 0;
    try {
      client.increment('orders', 2, 0.5, ['shop:eu']);
    } finally {
      Math.random = random;
    }
    client.increment('orders', 1, ['shop:eu']);
    client.gauge('queue.depth', 7, ['q:a']);
    client.distribution('payload.size', 100, ['kind:json']);
    client.distribution('payload.size', 300, ['kind:json']);
    client.histogram('db.rows', 42);
    client.timing('handler.time', 12.5, ['route:/x']);
    client.set('visitors', 'alice');
    client.set('visitors', 'bob');
    client.set('visitors', 'alice');
    await waitFor(() => aggregator.received >= 10, 'ten samples');
    await new Promise<void>((resolve) => client.close(() => resolve()));

    assert.deepEqual(errors, []);
    const points = aggregator.collect(Date.now());
    assert.equal(find(points, 'orders', ['shop:eu']).value, 5);
    assert.equal(find(points, 'queue.depth', ['q:a']).value, 7);
    const payload = find(points, 'payload.size', ['kind:json']);
    assert.deepEqual(payload.values, [100, 300]);
    assert.equal(payload.value, 400);
    assert.deepEqual(find(points, 'db.rows').values, [42]);
    assert.deepEqual(find(points, 'handler.time', ['route:/x']).values, [12.5]);
    assert.equal(find(points, 'visitors').value, 2);
    assert.equal(find(points, 'visitors').type, 'set');
    assert.equal(aggregator.parseErrors, 0);
  });

  test('survives garbage, huge and invalid UTF-8 datagrams and keeps aggregating', async (t) => {
    const aggregator = new CountingAggregator();
    const reported: string[] = [];
    // Every malformed line is reported here (interval 0); the next test covers the rate limit.
    const server = await startDogStatsD({ host: '127.0.0.1', port: 0, aggregator, onError: (m) => reported.push(m), errorReportIntervalMs: 0 });
    t.after(() => server.close());

    await sendRaw(server.port, Buffer.from([0x00, 0x01, 0x02, 0x7c, 0x7c, 0x3a]));
    await sendRaw(server.port, Buffer.from([0xc3, 0x28, 0x3a, 0x31, 0x7c, 0x63]));
    await sendRaw(server.port, 'garbage without pipes');
    // Over Datadog's 8 KiB default: 900 lines, one of them bad.
    const lines = Array.from({ length: 900 }, (_, i) => `big.${i % 3}:1|c`);
    lines[451] = 'big.bad:nope|c';
    await sendRaw(server.port, lines.join('\n'));
    await waitFor(() => aggregator.parseErrors >= 4 && aggregator.received >= 899, 'the bad packets to be counted');

    await sendRaw(server.port, 'after:1|c');
    await waitFor(() => aggregator.received >= 900, 'the good packet after the bad ones');

    assert.equal(aggregator.parseErrors, 4);
    assert.equal(reported.length, 4);
    assert.ok(reported.some((m) => /invalid UTF-8/.test(m)));
    const points = aggregator.collect(Date.now());
    assert.equal(find(points, 'after').value, 1);
    assert.equal(find(points, 'big.0').value, 300);
    assert.equal(find(points, 'big.1').value, 299);
  });

  test('reports a flood of malformed lines once per interval, with the count of the others', async (t) => {
    const aggregator = new CountingAggregator();
    const reported: string[] = [];
    let clock = 0;
    const server = await startDogStatsD({ host: '127.0.0.1', port: 0, aggregator, onError: (m) => reported.push(m), errorReportIntervalMs: 10_000, now: () => clock });
    t.after(() => server.close());
    for (let i = 0; i < 50; i++) await sendRaw(server.port, `bad.${i}|c`);
    await waitFor(() => aggregator.parseErrors === 50, 'fifty bad lines');
    assert.deepEqual(reported, ['dogstatsd: no value: "bad.0|c"']);

    clock = 10_000;
    await sendRaw(server.port, 'x:1|nope');
    await waitFor(() => aggregator.parseErrors === 51, 'one more bad line');
    assert.equal(reported.length, 2);
    assert.equal(reported[1], 'dogstatsd: unknown metric type "nope": "x:1|nope" (and 49 more malformed lines since the last report)');
    await sendRaw(server.port, 'good:1|c');
    await waitFor(() => aggregator.received === 1, 'the good line');
  });

  test('close is idempotent', async () => {
    const server = await startDogStatsD({ host: '127.0.0.1', port: 0, aggregator: new DogStatsDAggregator() });
    await server.close();
    await server.close();
  });
});
