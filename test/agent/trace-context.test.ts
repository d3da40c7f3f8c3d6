import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { extractTraceContext } from '../../src/agent/invocation/trace-context.ts';
import { decimalToHex16, hexToDecimal, isSpanId, isTraceId, newSpanId, newTraceId } from '../../src/agent/invocation/ids.ts';

describe('ids', () => {
  test('new ids are lowercase hex of the right width and differ', () => {
    const spans = new Set(Array.from({ length: 200 }, newSpanId));
    const traces = new Set(Array.from({ length: 200 }, newTraceId));
    assert.equal(spans.size, 200);
    assert.equal(traces.size, 200);
    for (const s of spans) assert.ok(isSpanId(s) && !/^0+$/.test(s), s);
    for (const t of traces) assert.ok(isTraceId(t) && !/^0+$/.test(t), t);
  });

  test('decimal <-> hex round trips at the edges of uint64', () => {
    assert.equal(decimalToHex16('0'), '0000000000000000');
    assert.equal(decimalToHex16('1'), '0000000000000001');
    assert.equal(decimalToHex16('18446744073709551615'), 'ffffffffffffffff');
    assert.equal(hexToDecimal('ffffffffffffffff'), '18446744073709551615');
    assert.equal(hexToDecimal('00000000000004d2'), '1234');
    assert.equal(decimalToHex16(hexToDecimal('8000000000000000')!), '8000000000000000');
  });

  test('bad numbers are undefined, not exceptions', () => {
    for (const bad of ['', '-1', '1.5', ' 1', 'abc', '18446744073709551616', '123456789012345678901']) assert.equal(decimalToHex16(bad), undefined, bad);
    for (const bad of ['', 'xyz', '12345678901234567', '-1']) assert.equal(hexToDecimal(bad), undefined, bad);
  });
});

describe('extractTraceContext: Datadog headers', () => {
  test('decimal ids, priority, and the upper 64 bits from _dd.p.tid', () => {
    const ctx = extractTraceContext({
      'x-datadog-trace-id': '1234',
      'x-datadog-parent-id': '18446744073709551615',
      'x-datadog-sampling-priority': '2',
      'x-datadog-tags': '_dd.p.dm=-4,_dd.p.tid=640cfd8d00000000',
    });
    assert.deepEqual(ctx, { traceId: '640cfd8d0000000000000000000004d2', parentId: 'ffffffffffffffff', samplingPriority: 2, source: 'datadog' });
  });

  test('no tid: the upper half is zero; no priority: none', () => {
    assert.deepEqual(extractTraceContext({ 'x-datadog-trace-id': '1', 'x-datadog-parent-id': '2' }), {
      traceId: '00000000000000000000000000000001',
      parentId: '0000000000000002',
      source: 'datadog',
    });
  });

  test('a bad tid is ignored, the rest is used', () => {
    const ctx = extractTraceContext({ 'x-datadog-trace-id': '1', 'x-datadog-parent-id': '2', 'x-datadog-tags': '_dd.p.tid=zz' });
    assert.equal(ctx?.traceId, '00000000000000000000000000000001');
  });

  test('malformed Datadog ids fall through to traceparent', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const cases: Array<Record<string, string>> = [{ 'x-datadog-trace-id': 'abc' }, { 'x-datadog-trace-id': '0' }, { 'x-datadog-trace-id': '99999999999999999999999' }, { 'x-datadog-trace-id': '5', 'x-datadog-parent-id': '-3' }];
    for (const bad of cases) {
      const ctx = extractTraceContext({ ...bad, traceparent });
      assert.equal(ctx?.source, 'tracecontext', JSON.stringify(bad));
    }
  });

  test('a non-numeric sampling priority is left out', () => {
    const ctx = extractTraceContext({ 'x-datadog-trace-id': '7', 'x-datadog-parent-id': '8', 'x-datadog-sampling-priority': 'high' });
    assert.equal(ctx?.samplingPriority, undefined);
  });
});

describe('extractTraceContext: W3C traceparent', () => {
  test('version 00, sampled', () => {
    assert.deepEqual(extractTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }), {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      parentId: 'b7ad6b7169203331',
      samplingPriority: 1,
      source: 'tracecontext',
    });
  });

  test('not sampled gives priority 0; tracestate dd=s refines a consistent flag', () => {
    assert.equal(extractTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' })?.samplingPriority, 0);
    assert.equal(extractTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'dd=s:2;o:rum,foo=bar' })?.samplingPriority, 2);
    // Inconsistent with the flag: the flag wins.
    assert.equal(extractTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00', tracestate: 'dd=s:2' })?.samplingPriority, 0);
  });

  test('a future version may carry more fields', () => {
    assert.equal(extractTraceContext({ traceparent: '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra' })?.source, 'tracecontext');
  });

  const bad: Array<[string, string]> = [
    ['version ff', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
    ['version 00 with extra fields', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x'],
    ['all-zero trace id', '00-00000000000000000000000000000000-b7ad6b7169203331-01'],
    ['all-zero parent id', '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01'],
    ['short trace id', '00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01'],
    ['uppercase hex', '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01'],
    ['garbage', 'hello'],
    ['empty', ''],
  ];
  for (const [name, value] of bad) {
    test(`rejected: ${name} (falls through to X-Ray)`, () => {
      const ctx = extractTraceContext({ traceparent: value, 'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1' });
      assert.equal(ctx?.source, 'xray');
    });
  }
});

describe('extractTraceContext: X-Ray', () => {
  test('the low 64 bits of the root become the trace id', () => {
    assert.deepEqual(extractTraceContext({ 'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1' }), {
      traceId: '0000000000000000e1be46a994272793',
      parentId: '53995c3f42cd8ad8',
      samplingPriority: 1,
      source: 'xray',
    });
  });

  test('field order and case do not matter; Sampled=0 is priority 0; no Sampled is none', () => {
    const ctx = extractTraceContext({ 'x-amzn-trace-id': 'sampled=0; parent=53995C3F42CD8AD8; root=1-5759E988-BD862E3FE1BE46A994272793' });
    assert.deepEqual(ctx, { traceId: '0000000000000000e1be46a994272793', parentId: '53995c3f42cd8ad8', samplingPriority: 0, source: 'xray' });
    assert.equal(extractTraceContext({ 'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8' })?.samplingPriority, undefined);
  });

  test('without a parent (as front doors add it) or malformed: no context', () => {
    for (const v of [
      'Root=1-5bdb40ca-556d8b0c50dc66f0511bf520',
      'Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8',
      'Root=1-5759e988-bd862e3f;Parent=53995c3f42cd8ad8',
      'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=xyz',
      'Root=1-5759e988-bd862e3f0000000000000000;Parent=53995c3f42cd8ad8',
      ';;;===',
    ]) {
      assert.equal(extractTraceContext({ 'x-amzn-trace-id': v }), undefined, v);
    }
  });
});

describe('extractTraceContext: precedence and carriers', () => {
  const all = {
    'x-datadog-trace-id': '1',
    'x-datadog-parent-id': '2',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1',
  };

  test('datadog, then tracecontext, then xray', () => {
    assert.equal(extractTraceContext(all)?.source, 'datadog');
    const { 'x-datadog-trace-id': _a, 'x-datadog-parent-id': _b, ...noDatadog } = all;
    assert.equal(extractTraceContext(noDatadog)?.source, 'tracecontext');
    const { traceparent: _c, ...onlyXray } = noDatadog;
    assert.equal(extractTraceContext(onlyXray)?.source, 'xray');
    assert.equal(extractTraceContext({}), undefined);
  });

  test('a carrier found in the records wins over the headers; an empty one does not hide them', () => {
    const fromCarrier = extractTraceContext(all, { 'x-datadog-trace-id': '77', 'x-datadog-parent-id': '88' });
    assert.equal(fromCarrier?.traceId, '0000000000000000000000000000004d');
    assert.equal(extractTraceContext(all, { unrelated: 'x' })?.traceId, '00000000000000000000000000000001');
  });

  test('values of the wrong type (untyped JSON) are no context, not an exception', () => {
    const weird = { 'x-datadog-trace-id': 5, traceparent: ['a'], 'x-amzn-trace-id': {} } as unknown as Record<string, string>;
    assert.equal(extractTraceContext(weird), undefined);
  });
});
