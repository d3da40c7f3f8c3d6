/**
 * The Prometheus text exposition (format 0.0.4): exact output, HELP/TYPE lines, escaping of
 * label values and help text, metric names; and the enhanced-metrics aggregation behind
 * `GET /metrics`: counters and summaries from ingested points, drop gauges, merging of tag
 * sets, and seeding from the store so that a restart does not zero it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MetricPoint } from '../../src/agent/model.ts';
import { silentLogger } from '../../src/logging/logger.ts';
import { SqliteTelemetryStore } from '../../src/store/sqlite-telemetry-store.ts';
import {
  EnhancedMetricsAggregation,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  metricName,
  renderExposition,
} from '../../src/telemetry/prometheus.ts';
import { TelemetryService } from '../../src/telemetry/telemetry-service.ts';
import { assertSameExposition, invocationBatch } from '../helpers/telemetry.ts';

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nimbus-prometheus-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Checks text against the 0.0.4 grammar: each family is `# HELP`, then `# TYPE`, then its
 * samples (named after the family, with `_sum`/`_count` for summaries); no family twice;
 * label values only with valid escapes; values Go's ParseFloat reads; a final newline.
 */
function assertValidExposition(text: string): void {
  assert.ok(text === '' || text.endsWith('\n'), 'ends with a newline');
  const seen = new Set<string>();
  let family: { name: string; type: string } | undefined;
  let help: string | undefined;
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\})? (\S+)$/;
  for (const line of text.slice(0, -1).split('\n')) {
    const h = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) ((?:[^\\\n]|\\[\\n])*)$/.exec(line);
    if (h) {
      assert.ok(!seen.has(h[1]!), `family ${h[1]} appears once`);
      seen.add(h[1]!);
      help = h[1];
      family = undefined;
      continue;
    }
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$/.exec(line);
    if (t) {
      assert.equal(t[1], help, `TYPE ${t[1]} follows its HELP`);
      family = { name: t[1]!, type: t[2]! };
      continue;
    }
    const s = sample.exec(line);
    assert.ok(s, `a valid sample line: ${JSON.stringify(line)}`);
    assert.ok(family, `sample ${s[1]} follows a TYPE line`);
    const allowed = family.type === 'summary' ? [family.name, `${family.name}_sum`, `${family.name}_count`] : [family.name];
    assert.ok(allowed.includes(s[1]!), `${s[1]} belongs to family ${family.name}`);
    assert.ok(/^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|NaN|[+-]Inf)$/.test(s[3]!), `value ${s[3]} parses as a float`);
  }
}

describe('text exposition', () => {
  it('writes HELP, TYPE and sample lines exactly, with labels in order', () => {
    const text = renderExposition([
      {
        name: 'jobs_total',
        help: 'Jobs run.',
        type: 'counter',
        samples: [
          { name: 'jobs_total', labels: [['queue', 'a'], ['kind', 'x']], value: 3 },
          { name: 'jobs_total', labels: [], value: 0 },
        ],
      },
      { name: 'latency_seconds', help: 'Latency.', type: 'summary', samples: [{ name: 'latency_seconds_sum', labels: [], value: 0.5 }, { name: 'latency_seconds_count', labels: [], value: 2 }] },
    ]);
    assert.equal(
      text,
      '# HELP jobs_total Jobs run.\n' +
        '# TYPE jobs_total counter\n' +
        'jobs_total{queue="a",kind="x"} 3\n' +
        'jobs_total 0\n' +
        '# HELP latency_seconds Latency.\n' +
        '# TYPE latency_seconds summary\n' +
        'latency_seconds_sum 0.5\n' +
        'latency_seconds_count 2\n',
    );
    assertValidExposition(text);
    assert.equal(renderExposition([]), '');
  });

  it('escapes backslash, double quote and newline in label values, backslash and newline in help', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.equal(escapeLabelValue('plain $LATEST:1'), 'plain $LATEST:1');
    assert.equal(escapeHelp('say "hi"\\now\nthen'), 'say "hi"\\\\now\\nthen');
    const text = renderExposition([{ name: 'x', help: 'line one\nline "two" \\', type: 'gauge', samples: [{ name: 'x', labels: [['v', 'q"\\\n']], value: 1 }] }]);
    assert.equal(text, '# HELP x line one\\nline "two" \\\\\n# TYPE x gauge\nx{v="q\\"\\\\\\n"} 1\n');
    assertValidExposition(text);
  });

  it('writes special values as Go spells them, and makes metric names valid', () => {
    assert.deepEqual([NaN, Infinity, -Infinity, 0.25, 1e-7, 12].map(formatValue), ['NaN', '+Inf', '-Inf', '0.25', '1e-7', '12']);
    assert.equal(metricName('aws_lambda_enhanced_cpu.total-utilization%'), 'aws_lambda_enhanced_cpu_total_utilization_');
    assert.equal(metricName('9lives'), '_9lives');
  });
});

describe('enhanced metrics aggregation', () => {
  const point = (name: string, value: number, tags: string[], extra: Partial<MetricPoint> = {}): MetricPoint => ({
    name,
    type: 'distribution',
    value,
    values: [value],
    tags,
    timestamp: T0,
    ...extra,
  });
  const tags = ['cold_start:false', 'executedversion:3', 'functionname:api', 'memorysize:256', 'region:eu-west-1', 'runtime:nodejs24.x'];

  it('exposes counters as _total and the rest as summaries, with the function, version and tag labels', () => {
    const agg = new EnhancedMetricsAggregation();
    agg.add('api', '3', point('aws.lambda.enhanced.invocations', 1, tags));
    agg.add('api', '3', point('aws.lambda.enhanced.invocations', 1, tags));
    agg.add('api', '3', point('aws.lambda.enhanced.duration', 0.5, tags));
    // Sampled at 25 %: four samples each.
    agg.add('api', '3', point('aws.lambda.enhanced.duration', 0.3, tags, { values: [0.1, 0.2], weights: [4, 4] }));
    agg.add('api', '3', point('custom.orders', 5, tags));
    agg.setDropped('api', { metrics: 2, spans: 0, logs: 7, security: 0 }, T0);
    const labels = 'functionname="api",executedversion="3",region="eu-west-1",runtime="nodejs24.x",memorysize="256",cold_start="false"';
    const text = renderExposition(agg.families());
    assert.equal(
      text,
      [
        '# HELP aws_lambda_enhanced_duration Invocation duration in seconds (aws.lambda.enhanced.duration).',
        '# TYPE aws_lambda_enhanced_duration summary',
        `aws_lambda_enhanced_duration_sum{${labels}} ${0.5 + 0.4 + 0.8}`,
        `aws_lambda_enhanced_duration_count{${labels}} 9`,
        '# HELP aws_lambda_enhanced_errors_total Invocations that ended in an error (aws.lambda.enhanced.errors).',
        '# TYPE aws_lambda_enhanced_errors_total counter',
        `aws_lambda_enhanced_errors_total{${labels}} 0`,
        '# HELP aws_lambda_enhanced_invocations_total Invocations, from the Nimbus agent (aws.lambda.enhanced.invocations).',
        '# TYPE aws_lambda_enhanced_invocations_total counter',
        `aws_lambda_enhanced_invocations_total{${labels}} 2`,
        '# HELP aws_lambda_enhanced_out_of_memory_total Invocations that ran out of memory (aws.lambda.enhanced.out_of_memory).',
        '# TYPE aws_lambda_enhanced_out_of_memory_total counter',
        `aws_lambda_enhanced_out_of_memory_total{${labels}} 0`,
        '# HELP aws_lambda_enhanced_timeouts_total Invocations that timed out (aws.lambda.enhanced.timeouts).',
        '# TYPE aws_lambda_enhanced_timeouts_total counter',
        `aws_lambda_enhanced_timeouts_total{${labels}} 0`,
        "# HELP nimbus_telemetry_dropped Items a function's Nimbus agent dropped since it started (its latest report), by kind.",
        '# TYPE nimbus_telemetry_dropped gauge',
        'nimbus_telemetry_dropped{functionname="api",kind="logs"} 7',
        'nimbus_telemetry_dropped{functionname="api",kind="metrics"} 2',
        'nimbus_telemetry_dropped{functionname="api",kind="security"} 0',
        'nimbus_telemetry_dropped{functionname="api",kind="spans"} 0',
        '',
      ].join('\n'),
    );
    assertValidExposition(text);
  });

  it('escapes tag values in labels, falls back to the batch version, and leaves out missing labels', () => {
    const agg = new EnhancedMetricsAggregation();
    agg.add('weird', '$LATEST', point('aws.lambda.enhanced.shutdowns', 1, ['runtime:my"run\\time\nx', 'cold_start:true']));
    const text = renderExposition(agg.families());
    assert.equal(
      text,
      '# HELP aws_lambda_enhanced_shutdowns_total Execution environments shut down (aws.lambda.enhanced.shutdowns).\n' +
        '# TYPE aws_lambda_enhanced_shutdowns_total counter\n' +
        'aws_lambda_enhanced_shutdowns_total{functionname="weird",executedversion="$LATEST",runtime="my\\"run\\\\time\\nx",cold_start="true"} 1\n',
    );
    assertValidExposition(text);
  });

  it('merges tag sets that differ only in tags it does not expose, and ignores metrics that are not enhanced', () => {
    const agg = new EnhancedMetricsAggregation();
    agg.add('api', '1', point('aws.lambda.enhanced.invocations', 1, ['init_type:on-demand', 'cold_start:true']));
    agg.add('api', '1', point('aws.lambda.enhanced.invocations', 1, ['init_type:provisioned-concurrency', 'cold_start:true']));
    agg.add('api', '1', point('my.enhanced.thing', 1, []));
    const families = agg.families();
    const invocations = families.find((f) => f.name === 'aws_lambda_enhanced_invocations_total')!;
    assert.deepEqual(invocations.samples.map((s) => s.value), [2]);
    assert.ok(families.every((f) => f.name.startsWith('aws_lambda_enhanced_')));
  });

  it('never writes a family twice when two names collide, and names unknown metrics validly', () => {
    const agg = new EnhancedMetricsAggregation();
    agg.add('api', '1', point('aws.lambda.enhanced.errors', 1, []));
    agg.add('api', '1', point('aws.lambda.enhanced.errors_total', 9, []));
    agg.add('api', '1', point('aws.lambda.enhanced.cpu-total.utilization', 0.5, []));
    const text = renderExposition(agg.families());
    assertValidExposition(text);
    assert.match(text, /^aws_lambda_enhanced_errors_total\{functionname="api",executedversion="1"\} 1$/m);
    assert.match(text, /^aws_lambda_enhanced_cpu_total_utilization_sum\{functionname="api",executedversion="1"\} 0.5$/m);
  });

  it('keeps the newest drop report and forgets a deleted function', () => {
    const agg = new EnhancedMetricsAggregation();
    agg.setDropped('api', { metrics: 5, spans: 0, logs: 0, security: 0 }, T0 + 10);
    agg.setDropped('api', { metrics: 1, spans: 0, logs: 0, security: 0 }, T0);
    assert.match(renderExposition(agg.families()), /nimbus_telemetry_dropped\{functionname="api",kind="metrics"\} 5/);
    agg.deleteFunction('api');
    assert.equal(renderExposition(agg.families()), '');
  });
});

describe('GET /metrics body across a restart', () => {
  it('is seeded from the retained points, so a restart does not zero the counters', async () => {
    const file = join(dir, 'nimbus.db');
    const open = () =>
      new TelemetryService({ store: SqliteTelemetryStore.open({ filePath: file }), logger: silentLogger, retentionHours: 24, maxRowsPerTable: 1000, now: () => T0 });
    const first = open();
    await first.start();
    await first.ingest(
      invocationBatch('orders', [
        { requestId: 'a', startMs: T0, durationMs: 250, coldStart: true },
        { requestId: 'b', startMs: T0 + 1000, durationMs: 100, error: true },
      ], { dropped: { metrics: 0, spans: 4, logs: 0, security: 0 } }),
    );
    await first.ingest(invocationBatch('users', [{ requestId: 'c', startMs: T0, durationMs: 20 }], { memorySize: 1024 }));
    const before = first.prometheus();
    assertValidExposition(before);
    assert.match(before, /^aws_lambda_enhanced_errors_total\{functionname="orders",executedversion="\$LATEST",region="us-east-1",runtime="nodejs24.x",memorysize="128",cold_start="false"\} 1$/m);
    assert.match(before, /^aws_lambda_enhanced_duration_count\{functionname="users",executedversion="\$LATEST",region="us-east-1",runtime="nodejs24.x",memorysize="1024",cold_start="false"\} 1$/m);
    assert.match(before, /^nimbus_telemetry_dropped\{functionname="orders",kind="spans"\} 4$/m);
    await first.close();

    const second = open();
    await second.start();
    try {
      assertSameExposition(second.prometheus(), before);
      // And it keeps counting from there.
      await second.ingest(invocationBatch('users', [{ requestId: 'd', startMs: T0 + 5, durationMs: 20 }], { memorySize: 1024 }));
      assert.match(second.prometheus(), /^aws_lambda_enhanced_invocations_total\{functionname="users",[^}]*\} 2$/m);
    } finally {
      await second.close();
    }
  });
});
