import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { applyProcessingRules, parseProcessingRules } from '../../src/agent/logs/processing-rules.ts';
import { LogProcessor } from '../../src/agent/logs/log-processor.ts';
import type { ProcessingRule } from '../../src/agent/logs/processing-rules.ts';
import type { LogRecord, MetricPoint, SecuritySignal, Span, TelemetryEvent, TelemetrySink } from '../../src/agent/model.ts';

const REQ_A = '6d68ca91-49c9-448d-89b8-7ca3e6dc66aa';
const REQ_B = 'c793869b-ee49-115b-a5b6-4fd21e8dedac';
const TIME = '2024-05-01T10:00:00.000Z';
const TIME_MS = Date.parse(TIME);

class RecordingSink implements TelemetrySink {
  logs: LogRecord[] = [];
  addMetric(_point: MetricPoint): void {}
  addSpans(_spans: Span[]): void {}
  addLog(record: LogRecord): void {
    this.logs.push(record);
  }
  addSecurity(_signal: SecuritySignal): void {}
}

function rules(json: unknown): ProcessingRule[] {
  const parsed = parseProcessingRules(JSON.stringify(json));
  assert.deepEqual(parsed.warnings, []);
  return parsed.rules;
}

function setup(ruleList: ProcessingRule[] = []) {
  const sink = new RecordingSink();
  const oom: Array<string | undefined> = [];
  const processor = new LogProcessor({ sink, rules: ruleList, onOutOfMemory: (id) => oom.push(id), now: () => 42 });
  const send = (type: string, record: unknown, time = TIME) => processor.handle({ time, type, record } satisfies TelemetryEvent);
  return { sink, oom, processor, send };
}

describe('parseProcessingRules', () => {
  test('returns no rules and no warnings when unset or blank', () => {
    assert.deepEqual(parseProcessingRules(undefined), { rules: [], warnings: [] });
    assert.deepEqual(parseProcessingRules('  '), { rules: [], warnings: [] });
  });

  test('parses each rule type', () => {
    const parsed = rules([
      { type: 'exclude_at_match', name: 'no_health', pattern: 'GET /health' },
      { type: 'include_at_match', name: 'only_app', pattern: '(?i)app' },
      { type: 'mask_sequences', name: 'cards', pattern: '\\d{4}-\\d{4}', replace_placeholder: '[card]' },
    ]);
    assert.deepEqual(parsed.map((r) => [r.type, r.name]), [
      ['exclude_at_match', 'no_health'],
      ['include_at_match', 'only_app'],
      ['mask_sequences', 'cards'],
    ]);
    assert.equal(parsed[1].pattern.flags, 'i', 'a leading (?i) becomes the i flag');
    assert.equal(parsed[2].pattern.global, true);
  });

  test('warns about invalid JSON and applies no rules', () => {
    const parsed = parseProcessingRules('[{"type": "exclude_at_match",');
    assert.deepEqual(parsed.rules, []);
    assert.equal(parsed.warnings.length, 1);
    assert.match(parsed.warnings[0], /not valid JSON/);
    assert.match(parseProcessingRules('{"type":"x"}').warnings[0], /must be a JSON array/);
  });

  test('skips each bad rule with a warning naming it and keeps the good ones', () => {
    const parsed = parseProcessingRules(
      JSON.stringify([
        { type: 'exclude_at_match', name: 'broken', pattern: '([a-z' },
        { type: 'drop_everything', name: 'mystery', pattern: 'x' },
        { type: 'include_at_match', name: 'no_pattern' },
        { type: 'mask_sequences', name: 'no_placeholder', pattern: 'x' },
        { type: 'exclude_at_match', pattern: 'anonymous' },
        'not a rule',
        { type: 'exclude_at_match', name: 'good', pattern: 'debug' },
      ]),
    );
    assert.deepEqual(parsed.rules.map((r) => r.name), ['good']);
    assert.equal(parsed.warnings.length, 6);
    assert.match(parsed.warnings[0], /"broken" \(#0\) has an invalid pattern "\(\[a-z"/);
    assert.match(parsed.warnings[1], /"mystery" \(#1\) has unknown type "drop_everything"/);
    assert.match(parsed.warnings[2], /"no_pattern" \(#2\) has no pattern/);
    assert.match(parsed.warnings[3], /"no_placeholder" \(#3\) is mask_sequences without a replace_placeholder/);
    assert.match(parsed.warnings[4], /#4 has no name/);
    assert.match(parsed.warnings[5], /#5 is not an object/);
  });
});

describe('applyProcessingRules', () => {
  test('exclude_at_match drops matching messages', () => {
    const list = rules([{ type: 'exclude_at_match', name: 'health', pattern: '/health' }]);
    assert.equal(applyProcessingRules(list, 'GET /health 200'), undefined);
    assert.equal(applyProcessingRules(list, 'GET /orders 200'), 'GET /orders 200');
  });

  test('include_at_match drops messages that do not match', () => {
    const list = rules([{ type: 'include_at_match', name: 'errors', pattern: 'ERROR|WARN' }]);
    assert.equal(applyProcessingRules(list, 'INFO fine'), undefined);
    assert.equal(applyProcessingRules(list, 'ERROR bad'), 'ERROR bad');
  });

  test('mask_sequences replaces every match, with group references', () => {
    const list = rules([
      { type: 'mask_sequences', name: 'cards', pattern: '\\d{4}-\\d{4}-\\d{4}-(\\d{4})', replace_placeholder: 'XXXX-${1}' },
      { type: 'mask_sequences', name: 'tokens', pattern: 'token=\\w+', replace_placeholder: 'token=[masked]' },
    ]);
    assert.equal(
      applyProcessingRules(list, 'paid 1234-5678-9012-3456 and 1111-2222-3333-4444 token=abc token=def'),
      'paid XXXX-3456 and XXXX-4444 token=[masked] token=[masked]',
    );
    assert.equal(applyProcessingRules(list, 'again 1234-5678-9012-3456'), 'again XXXX-3456', 'no regex state carried between calls');
  });

  test('applies rules in order: a mask before an include changes what the include sees', () => {
    const maskFirst = rules([
      { type: 'mask_sequences', name: 'secret', pattern: 'secret', replace_placeholder: '***' },
      { type: 'include_at_match', name: 'has_secret', pattern: 'secret' },
    ]);
    assert.equal(applyProcessingRules(maskFirst, 'the secret'), undefined);
    const includeFirst = rules([
      { type: 'include_at_match', name: 'has_secret', pattern: 'secret' },
      { type: 'mask_sequences', name: 'secret', pattern: 'secret', replace_placeholder: '***' },
    ]);
    assert.equal(applyProcessingRules(includeFirst, 'the secret'), 'the ***');
  });
});

describe('LogProcessor', () => {
  test('writes START, END and REPORT lines as Lambda does', () => {
    const { sink, send } = setup();
    send('platform.start', { requestId: REQ_A, version: '3' });
    send('platform.runtimeDone', { requestId: REQ_A, status: 'success', metrics: { durationMs: 12.3 } });
    send('platform.report', { requestId: REQ_A, status: 'success', metrics: { durationMs: 12.345, billedDurationMs: 13, memorySizeMB: 128, maxMemoryUsedMB: 40, initDurationMs: 100 } });
    send('platform.start', { requestId: REQ_B });
    send('platform.report', { requestId: REQ_B, status: 'timeout', metrics: { durationMs: 3000, billedDurationMs: 3000, memorySizeMB: 128, maxMemoryUsedMB: 41 } });
    assert.deepEqual(
      sink.logs.map((l) => [l.source, l.requestId, l.level, l.message]),
      [
        ['platform', REQ_A, 'info', `START RequestId: ${REQ_A} Version: 3`],
        ['platform', REQ_A, 'info', `END RequestId: ${REQ_A}`],
        ['platform', REQ_A, 'info', `REPORT RequestId: ${REQ_A}\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 100.00 ms`],
        ['platform', REQ_B, 'info', `START RequestId: ${REQ_B} Version: $LATEST`],
        ['platform', REQ_B, 'error', `REPORT RequestId: ${REQ_B}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\tStatus: timeout`],
      ],
    );
    assert.ok(sink.logs.every((l) => l.timestamp === TIME_MS));
  });

  test('reports dropped telemetry and ignores records it has no line for', () => {
    const { sink, send } = setup();
    send('platform.logsDropped', { droppedRecords: 12, droppedBytes: 4096, reason: 'Consumer seems to have fallen behind' });
    send('platform.initStart', { functionName: 'f', functionVersion: '$LATEST', initializationType: 'on-demand', phase: 'init' });
    send('platform.start', 'not an object');
    send('platform.report', { metrics: {} });
    assert.equal(sink.logs.length, 1);
    assert.equal(sink.logs[0].level, 'warn');
    assert.match(sink.logs[0].message, /dropped 12 log records \(4096 bytes\).*fallen behind/);
  });

  test('attributes function lines to the open invocation, also when they arrive after runtimeDone', () => {
    const { sink, send } = setup();
    send('function', 'during init\n');
    send('platform.start', { requestId: REQ_A });
    send('function', 'handling\n');
    send('platform.runtimeDone', { requestId: REQ_A, status: 'success' });
    send('function', 'late line');
    send('platform.start', { requestId: REQ_B });
    send('extension', 'extension says hi');
    const lines = sink.logs.filter((l) => l.source !== 'platform');
    assert.deepEqual(
      lines.map((l) => [l.source, l.requestId, l.message]),
      [
        ['function', undefined, 'during init'],
        ['function', REQ_A, 'handling'],
        ['function', REQ_A, 'late line'],
        ['extension', REQ_B, 'extension says hi'],
      ],
    );
  });

  test('takes request id and level from the Node.js and Python text formats', () => {
    const { sink, send } = setup();
    send('platform.start', { requestId: REQ_B });
    send('function', `2024-05-01T10:00:00.123Z\t${REQ_A}\tERROR\tInvoke Error {"errorType":"TypeError"}\n`);
    send('function', `[WARNING]\t2024-05-01T10:00:00.123Z\t${REQ_A}\tslow query\n`);
    send('function', `2024-05-01T10:00:00.123Z\tundefined\tINFO\tloaded config\n`);
    const [node, python, init] = sink.logs.slice(1);
    assert.deepEqual([node.requestId, node.level], [REQ_A, 'error']);
    assert.equal(node.message, 'Invoke Error {"errorType":"TypeError"}', 'the prefix is in fields of their own');
    assert.equal(python.message, 'slow query');
    assert.deepEqual([python.requestId, python.level], [REQ_A, 'warn']);
    assert.deepEqual([init.requestId, init.level], [REQ_B, 'info'], 'Node prints "undefined" outside an invocation');
  });

  test('parses JSON lines and JSON-format records', () => {
    const { sink, send } = setup();
    send('platform.start', { requestId: REQ_B });
    send('function', `{"timestamp":"${TIME}","level":"ERROR","requestId":"${REQ_A}","message":"failed","orderId":7}\n`);
    send('function', { timestamp: TIME, level: 'INFO', requestId: REQ_A, message: 'from the platform' });
    send('function', '{"levelname":"DEBUG","msg":"python json","request_id":"r-1"}');
    send('function', '{"level":30,"msg":"pino","AWSrequestId":"r-2"}');
    send('function', '{"severity":"warning","note":"no message"}');
    send('function', '{not json}');
    const [a, b, c, d, e, f] = sink.logs.slice(1);
    assert.deepEqual([a.requestId, a.level, a.message], [REQ_A, 'error', 'failed']);
    assert.deepEqual(a.attributes, { timestamp: TIME, level: 'ERROR', requestId: REQ_A, message: 'failed', orderId: 7 });
    assert.deepEqual([b.requestId, b.level, b.message], [REQ_A, 'info', 'from the platform']);
    assert.deepEqual([c.requestId, c.level, c.message], ['r-1', 'debug', 'python json']);
    assert.deepEqual([d.requestId, d.level, d.message], ['r-2', 'info', 'pino']);
    assert.deepEqual([e.requestId, e.level, e.message], [REQ_B, 'warn', '{"severity":"warning","note":"no message"}']);
    assert.deepEqual([f.message, f.attributes], ['{not json}', undefined]);
  });

  test('uses now() when the event time is invalid, and ignores records of the wrong type', () => {
    const { sink, send } = setup();
    send('function', 'line', 'not a time');
    send('function', 12);
    send('function', null);
    assert.equal(sink.logs.length, 1);
    assert.equal(sink.logs[0].timestamp, 42);
  });

  test('applies processing rules: drops, masks the message and the JSON attributes', () => {
    const { sink, send } = setup(
      rules([
        { type: 'exclude_at_match', name: 'health', pattern: 'healthcheck' },
        { type: 'mask_sequences', name: 'keys', pattern: 'sk_live_\\w+', replace_placeholder: '[key]' },
      ]),
    );
    send('platform.start', { requestId: REQ_A });
    send('function', 'healthcheck ok');
    send('function', 'charging with sk_live_abc123');
    send('function', '{"message":"using sk_live_zzz","nested":{"key":"sk_live_yyy"},"list":["sk_live_x"]}');
    const lines = sink.logs.filter((l) => l.source === 'function');
    assert.equal(lines.length, 2);
    assert.equal(lines[0].message, 'charging with [key]');
    assert.equal(lines[1].message, 'using [key]');
    assert.deepEqual(lines[1].attributes, { message: 'using [key]', nested: { key: '[key]' }, list: ['[key]'] });
  });

  test('reports out-of-memory lines once per invocation, for function lines only', () => {
    const { oom, send } = setup();
    send('platform.start', { requestId: REQ_A });
    send('function', '<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory');
    send('function', ' 1: 0xb7b3e0 node::Abort() JavaScript heap out of memory');
    send('extension', 'MemoryError in an extension is not the function');
    send('platform.start', { requestId: REQ_B });
    send('function', `[ERROR] MemoryError: Unable to allocate\nTraceback...`);
    send('function', `{"level":"ERROR","requestId":"other","message":"java.lang.OutOfMemoryError: Java heap space"}`);
    send('function', 'everything is fine');
    assert.deepEqual(oom, [REQ_A, REQ_B, 'other']);
  });

  test('recognises every runtime out-of-memory message', () => {
    const messages = [
      'JavaScript heap out of memory',
      'MemoryError',
      'fatal error: runtime: out of memory',
      'java.lang.OutOfMemoryError',
      'Runtime exited with error: signal: killed',
      'NoMemoryError',
      'System.OutOfMemoryException',
    ];
    for (const message of messages) {
      const { oom, send } = setup();
      send('function', message);
      assert.deepEqual(oom, [undefined], message);
    }
  });
});
