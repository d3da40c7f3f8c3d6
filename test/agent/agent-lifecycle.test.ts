/**
 * The agent's own small parts: merged enhanced metrics, the end-of-invocation and
 * pending-report waits, the Telemetry API listener's handling of bad batches, runtime ids,
 * and configuration precedence and warnings.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { EnhancedAggregator } from '../../src/agent/enhanced/enhanced-aggregator.ts';
import { InvocationEnds } from '../../src/agent/lifecycle/invocation-ends.ts';
import { PendingReports } from '../../src/agent/lifecycle/pending-reports.ts';
import { startTelemetryListener } from '../../src/agent/lambda/telemetry-listener.ts';
import { runtimeIdOf } from '../../src/agent/agent.ts';
import { runtimeVersionOf } from '../../src/environments/telemetry-events.ts';
import { readAgentConfig } from '../../src/agent/config.ts';
import type { MetricPoint, TelemetryEvent } from '../../src/agent/model.ts';

const point = (name: string, value: number, requestId: string | undefined, tags = ['functionname:f']): MetricPoint => ({
  name,
  type: 'distribution',
  value,
  values: [value],
  tags,
  timestamp: 1000,
  ...(requestId ? { requestId } : {}),
});

describe('EnhancedAggregator', () => {
  test('merges per-invocation points into one distribution per metric and tag set, request ids beside the samples', () => {
    const agg = new EnhancedAggregator();
    agg.add(point('aws.lambda.enhanced.duration', 0.01, 'a'));
    agg.add(point('aws.lambda.enhanced.duration', 0.02, 'b'));
    agg.add(point('aws.lambda.enhanced.duration', 0.5, 'c', ['functionname:f', 'cold_start:true']));
    agg.add(point('aws.lambda.enhanced.shutdowns', 1, undefined));
    const out = agg.collect();
    const warm = out.find((p) => p.name === 'aws.lambda.enhanced.duration' && p.tags.length === 1)!;
    assert.deepEqual(warm.values, [0.01, 0.02]);
    assert.deepEqual(warm.requestIds, ['a', 'b']);
    assert.equal(warm.value, 0.03);
    const cold = out.find((p) => p.tags.includes('cold_start:true'))!;
    assert.equal(cold.requestId, 'c', 'a single sample keeps the plain requestId');
    assert.equal(cold.requestIds, undefined);
    const shutdowns = out.find((p) => p.name === 'aws.lambda.enhanced.shutdowns')!;
    assert.equal(shutdowns.requestIds, undefined, 'a sample without an invocation drops the attribution');
    assert.deepEqual(agg.collect(), [], 'collect empties it');
  });

  test('past maxAttributed samples, the values go alone', () => {
    const agg = new EnhancedAggregator({ maxAttributed: 2 });
    for (const id of ['a', 'b', 'c']) agg.add(point('m', 1, id));
    const [merged] = agg.collect();
    assert.deepEqual(merged!.values, [1, 1, 1]);
    assert.equal(merged!.requestIds, undefined);
  });
});

describe('waits of the lifecycle loop', () => {
  test('InvocationEnds: an end seen before the wait, after it, and the release at shutdown', async () => {
    const ends = new InvocationEnds();
    ends.ended('early');
    await ends.wait('early');
    let late = false;
    const waiting = ends.wait('late').then(() => (late = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(late, false);
    ends.ended('late');
    await waiting;
    const never = ends.wait('never');
    ends.releaseAll();
    await never;
  });

  test('PendingReports: settles when every report is in, or after the wait', async () => {
    const reports = new PendingReports();
    await reports.settled(10_000); // nothing pending: at once
    reports.invoked('a');
    reports.invoked('b');
    const settled = reports.settled(10_000);
    reports.reported('a');
    reports.reported('b');
    await settled;
    reports.invoked('c');
    const started = Date.now();
    await reports.settled(20);
    assert.ok(Date.now() - started < 5000);
  });
});

describe('the Telemetry API listener', () => {
  function post(port: number, body: string | Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('takes event arrays; acknowledges and drops what is not one (no redelivery loop)', async () => {
    const got: TelemetryEvent[] = [];
    const errors: string[] = [];
    const listener = await startTelemetryListener({ host: '127.0.0.1', port: 0, onEvents: (events) => got.push(...events), onError: (m) => errors.push(m) });
    try {
      assert.equal(await post(listener.port, JSON.stringify([{ time: 't', type: 'platform.start', record: { requestId: 'r' } }, 'junk', { type: 7 }])), 200);
      assert.deepEqual(got.map((e) => e.type), ['platform.start'], 'entries without a string type are skipped');
      assert.equal(await post(listener.port, '{"not":"an array"}'), 200);
      assert.equal(await post(listener.port, 'not json at all'), 200);
      assert.equal(await post(listener.port, Buffer.alloc(5 * 1024 * 1024, 0x20)), 200);
      assert.equal(listener.rejected, 3);
      assert.equal(errors.length, 3);
      assert.equal(await post(listener.port, '[]'), 200, 'still serving');
    } finally {
      await listener.close();
    }
  });
});

test('runtime ids and Lambda runtime versions convert both ways', () => {
  for (const id of ['nodejs24.x', 'nodejs20.x', 'python3.12', 'python3.9']) assert.equal(runtimeIdOf(runtimeVersionOf(id)!), id);
  assert.equal(runtimeVersionOf('provided.al2023'), undefined);
  assert.equal(runtimeIdOf('garbage'), undefined);
});

describe('agent configuration', () => {
  test('defaults match the Datadog extension', () => {
    const c = readAgentConfig({});
    assert.equal(c.dogstatsdPort, 8125);
    assert.equal(c.traceAgentPort, 8126);
    assert.equal(c.flushTimeoutMs, 30_000);
    assert.equal(c.logsEnabled, true);
    assert.equal(c.enhancedMetrics, true);
    assert.equal(c.appsecEnabled, false);
    assert.equal(c.wafTimeoutMicros, 5000);
    assert.equal(c.appsecMode, 'monitor');
    assert.equal(c.proxyEnabled, false);
    assert.deepEqual(c.warnings, []);
  });

  test('NIMBUS_* wins over DD_*; tags and service; the logs switches are ORed', () => {
    const c = readAgentConfig({
      DD_SERVERLESS_FLUSH_STRATEGY: 'end',
      NIMBUS_FLUSH_STRATEGY: 'periodically,1000',
      DD_TAGS: 'team:a,tier:1 zone:b',
      DD_SERVICE: 'Orders',
      DD_ENV: 'prod',
      DD_LOGS_ENABLED: 'false',
      DD_SERVERLESS_LOGS_ENABLED: 'true',
      AWS_LAMBDA_EXEC_WRAPPER: '/opt/nimbus-wrapper',
      DD_API_KEY: 'k',
      DD_SITE: 'datadoghq.eu',
    });
    assert.equal(c.flushStrategy, 'periodically,1000');
    assert.deepEqual(c.tags, ['team:a', 'tier:1', 'zone:b', 'service:orders', 'env:prod']);
    assert.equal(c.service, 'orders');
    assert.equal(c.logsEnabled, true);
    assert.equal(c.proxyEnabled, true);
    assert.equal(c.datadog?.metricsUrl, 'https://api.datadoghq.eu');
    assert.equal(c.datadog?.logsUrl, 'https://http-intake.logs.datadoghq.eu');
  });

  test('bad values: a warning each, and the default', () => {
    const c = readAgentConfig({ DD_ENHANCED_METRICS: 'maybe', DD_DOGSTATSD_PORT: 'eighty', DD_FLUSH_TIMEOUT: '-3', NIMBUS_APPSEC_MODE: 'panic', DD_LOG_LEVEL: 'loud' });
    assert.equal(c.enhancedMetrics, true);
    assert.equal(c.dogstatsdPort, 8125);
    assert.equal(c.flushTimeoutMs, 30_000);
    assert.equal(c.appsecMode, 'monitor');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.warnings.length, 5, c.warnings.join('\n'));
  });
});
