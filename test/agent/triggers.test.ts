import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { inferTrigger } from '../../src/agent/invocation/triggers.ts';
import { v1Event } from '../../src/triggers/events/payload-v1.ts';
import { v2Event } from '../../src/triggers/events/payload-v2.ts';
import { albEvent } from '../../src/triggers/events/alb-event.ts';
import { forwardedHeaders } from '../../src/triggers/events/common.ts';
import type { IncomingHttpRequest } from '../../src/triggers/types.ts';

/** A request as Nimbus's front doors read it, so that the events are exactly Nimbus's. */
function request(overrides: Partial<IncomingHttpRequest> = {}): IncomingHttpRequest {
  return {
    method: 'POST',
    rawPath: '/items/42',
    rawQuery: 'q=1',
    headers: [
      ['Host', 'example.test'],
      ['User-Agent', 'curl/8.5.0'],
      ['Content-Type', 'application/json'],
      ['X-Datadog-Trace-Id', '1234'],
    ],
    body: Buffer.from('{"a":1}'),
    sourceIp: '10.0.0.7',
    protocol: 'HTTP/1.1',
    receivedAtMs: 1_700_000_000_000,
    ...overrides,
  };
}

describe('inferTrigger: HTTP events made by Nimbus front doors', () => {
  test('a function URL event (lambda-url host) is function-url, not api-gateway-http', () => {
    const req = request();
    const event = v2Event({
      request: req,
      headers: forwardedHeaders(req, 9000),
      routeKey: '$default',
      rawPath: req.rawPath,
      path: '/items/42',
      apiId: 'abcdefghijklmnopqrstuvwxyz012345',
      domainName: 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost',
      accountId: 'anonymous',
      stage: '$default',
      requestId: 'r-1',
    });
    const t = inferTrigger(JSON.parse(JSON.stringify(event)));
    assert.equal(t?.kind, 'function-url');
    assert.deepEqual(t.tags, {
      'function_trigger.event_source': 'lambda-function-url',
      'http.method': 'POST',
      'http.url': 'http://abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost/items/42',
      'http.url_details.path': '/items/42',
      'http.useragent': 'curl/8.5.0',
    });
    assert.equal(t.headers['x-datadog-trace-id'], '1234');
    assert.equal(t.headers['user-agent'], 'curl/8.5.0');
  });

  test('a function URL event behind another host name is still recognised by its 32-character url id', () => {
    const event = {
      version: '2.0',
      routeKey: '$default',
      rawPath: '/',
      rawQueryString: '',
      headers: {},
      requestContext: { apiId: 'abcdefghijklmnopqrstuvwxyz012345', domainName: 'api.example.com', stage: '$default', http: { method: 'GET', path: '/' } },
    };
    assert.equal(inferTrigger(event)?.kind, 'function-url');
  });

  test('an HTTP API 2.0 event is api-gateway-http with its route and ARN', () => {
    const req = request({ method: 'GET' });
    const event = v2Event({
      request: req,
      headers: forwardedHeaders(req, 9000),
      routeKey: 'GET /items/{id}',
      rawPath: '/items/42',
      path: '/items/42',
      apiId: 'a1b2c3d4e5',
      domainName: 'a1b2c3d4e5.execute-api.eu-west-1.localhost',
      accountId: '123456789012',
      stage: 'prod',
      requestId: 'r-2',
      pathParameters: { id: '42' },
    });
    const t = inferTrigger(JSON.parse(JSON.stringify(event)), 'us-east-1');
    assert.equal(t?.kind, 'api-gateway-http');
    assert.deepEqual(t.tags, {
      'function_trigger.event_source': 'api-gateway',
      'function_trigger.event_source_arn': 'arn:aws:apigateway:eu-west-1::/restapis/a1b2c3d4e5/stages/prod',
      'http.method': 'GET',
      'http.url': 'http://a1b2c3d4e5.execute-api.eu-west-1.localhost/items/42',
      'http.url_details.path': '/items/42',
      'http.route': '/items/{id}',
      'http.useragent': 'curl/8.5.0',
    });
  });

  test('a REST (payload 1.0) event is api-gateway-rest with resource as the route', () => {
    const req = request();
    const event = v1Event({
      request: req,
      headers: forwardedHeaders(req, 9000),
      resource: '/items/{id}',
      path: '/items/42',
      apiId: 'a1b2c3d4e5',
      resourceId: 'abc123',
      domainName: 'a1b2c3d4e5.execute-api.us-east-1.localhost',
      accountId: '123456789012',
      stage: 'dev',
      binaryMediaTypes: [],
      pathParameters: { id: '42' },
      stageVariables: {},
      versioned: false,
    });
    const t = inferTrigger(JSON.parse(JSON.stringify(event)));
    assert.equal(t?.kind, 'api-gateway-rest');
    assert.equal(t.tags['http.route'], '/items/{id}');
    assert.equal(t.tags['http.method'], 'POST');
    assert.equal(t.tags['http.url_details.path'], '/items/42');
    assert.equal(t.tags['function_trigger.event_source_arn'], 'arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/dev');
    assert.equal(t.tags['http.useragent'], 'curl/8.5.0');
    assert.equal(t.headers['x-datadog-trace-id'], '1234');
  });

  for (const multiValueHeaders of [false, true]) {
    test(`an ALB event (${multiValueHeaders ? 'multi' : 'single'}-value headers) is alb with its target group`, () => {
      const req = request({ method: 'GET' });
      const event = albEvent({
        request: req,
        headers: forwardedHeaders(req, 9000),
        path: '/items/42',
        targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/6d0ecf831eec9f09',
        multiValueHeaders,
      });
      const t = inferTrigger(JSON.parse(JSON.stringify(event)));
      assert.equal(t?.kind, 'alb');
      assert.deepEqual(t.tags, {
        'function_trigger.event_source': 'application-load-balancer',
        'function_trigger.event_source_arn': 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/6d0ecf831eec9f09',
        'http.method': 'GET',
        'http.url': 'http://example.test/items/42',
        'http.url_details.path': '/items/42',
        'http.useragent': 'curl/8.5.0',
      });
      assert.equal(t.headers['x-datadog-trace-id'], '1234');
    });
  }
});

describe('inferTrigger: AWS sample events', () => {
  test('API Gateway REST example from the developer guide: https URL from the domain', () => {
    const event = {
      resource: '/{proxy+}',
      path: '/hello/world',
      httpMethod: 'POST',
      headers: { Host: 'gy415nuibc.execute-api.us-east-1.amazonaws.com' },
      requestContext: {
        apiId: 'gy415nuibc',
        stage: 'testStage',
        domainName: 'gy415nuibc.execute-api.us-east-1.amazonaws.com',
        identity: { sourceIp: '192.168.196.186', userAgent: 'PostmanRuntime/2.4.5' },
      },
    };
    const t = inferTrigger(event);
    assert.equal(t?.kind, 'api-gateway-rest');
    assert.equal(t.tags['http.url'], 'https://gy415nuibc.execute-api.us-east-1.amazonaws.com/hello/world');
    assert.equal(t.tags['http.useragent'], 'PostmanRuntime/2.4.5');
    assert.equal(t.headers['host'], 'gy415nuibc.execute-api.us-east-1.amazonaws.com');
  });

  test('SQS with a _datadog String attribute gives a carrier', () => {
    const event = {
      Records: [
        {
          messageId: 'm1',
          body: 'hello',
          eventSource: 'aws:sqs',
          eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:queue',
          attributes: { AWSTraceHeader: 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1' },
          messageAttributes: { _datadog: { dataType: 'String', stringValue: '{"x-datadog-trace-id":"123","x-datadog-parent-id":"456"}' } },
        },
      ],
    };
    const t = inferTrigger(event);
    assert.equal(t?.kind, 'sqs');
    assert.deepEqual(t.tags, { 'function_trigger.event_source': 'sqs', 'function_trigger.event_source_arn': 'arn:aws:sqs:us-east-1:123456789012:queue' });
    assert.deepEqual(t.carrier, { 'x-datadog-trace-id': '123', 'x-datadog-parent-id': '456' });
    assert.deepEqual(t.headers, {});
  });

  test('SQS with a Binary _datadog attribute (SNS raw delivery) is decoded', () => {
    const value = Buffer.from('{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}').toString('base64');
    const event = { Records: [{ eventSource: 'aws:sqs', body: 'x', messageAttributes: { _datadog: { dataType: 'Binary', binaryValue: value } } }] };
    assert.deepEqual(inferTrigger(event)?.carrier, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  });

  test('SQS without _datadog falls back to AWSTraceHeader', () => {
    const header = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
    const event = { Records: [{ eventSource: 'aws:sqs', body: 'x', attributes: { AWSTraceHeader: header } }] };
    assert.deepEqual(inferTrigger(event)?.carrier, { 'x-amzn-trace-id': header });
  });

  test('SQS carrying an SNS notification in its body uses the notification _datadog', () => {
    const body = JSON.stringify({ Type: 'Notification', MessageAttributes: { _datadog: { Type: 'String', Value: '{"x-datadog-trace-id":"9","x-datadog-parent-id":"8"}' } } });
    const t = inferTrigger({ Records: [{ eventSource: 'aws:sqs', body }] });
    assert.deepEqual(t?.carrier, { 'x-datadog-trace-id': '9', 'x-datadog-parent-id': '8' });
  });

  test('SQS carrying an EventBridge event in its body uses detail._datadog', () => {
    const body = JSON.stringify({ 'detail-type': 't', source: 's', detail: { _datadog: { 'x-datadog-trace-id': '5', 'x-datadog-parent-id': '6' } } });
    assert.deepEqual(inferTrigger({ Records: [{ eventSource: 'aws:sqs', body }] })?.carrier, { 'x-datadog-trace-id': '5', 'x-datadog-parent-id': '6' });
  });

  test('SNS with a _datadog attribute (String and Binary)', () => {
    const carrierJson = '{"x-datadog-trace-id":"11","x-datadog-parent-id":"22"}';
    for (const attr of [
      { Type: 'String', Value: carrierJson },
      { Type: 'Binary', Value: Buffer.from(carrierJson).toString('base64') },
    ]) {
      const event = { Records: [{ EventSource: 'aws:sns', Sns: { TopicArn: 'arn:aws:sns:us-east-1:123456789012:topic', Message: 'hi', MessageAttributes: { _datadog: attr } } }] };
      const t = inferTrigger(event);
      assert.equal(t?.kind, 'sns');
      assert.deepEqual(t.tags, { 'function_trigger.event_source': 'sns', 'function_trigger.event_source_arn': 'arn:aws:sns:us-east-1:123456789012:topic' });
      assert.deepEqual(t.carrier, { 'x-datadog-trace-id': '11', 'x-datadog-parent-id': '22' });
    }
  });

  test('S3, DynamoDB and Kinesis records', () => {
    const s3 = inferTrigger({ Records: [{ eventSource: 'aws:s3', s3: { bucket: { name: 'b', arn: 'arn:aws:s3:::b' } } }] });
    assert.equal(s3?.kind, 's3');
    assert.deepEqual(s3.tags, { 'function_trigger.event_source': 's3', 'function_trigger.event_source_arn': 'arn:aws:s3:::b' });
    const ddb = inferTrigger({ Records: [{ eventSource: 'aws:dynamodb', eventSourceARN: 'arn:aws:dynamodb:us-east-1:1:table/t/stream/x' }] });
    assert.equal(ddb?.kind, 'dynamodb');
    assert.equal(ddb.tags['function_trigger.event_source_arn'], 'arn:aws:dynamodb:us-east-1:1:table/t/stream/x');
    const kin = inferTrigger({ Records: [{ eventSource: 'aws:kinesis', eventSourceARN: 'arn:aws:kinesis:us-east-1:1:stream/s', kinesis: { data: 'aGk=' } }] });
    assert.equal(kin?.kind, 'kinesis');
    assert.equal(kin.tags['function_trigger.event_source'], 'kinesis');
  });

  test('EventBridge with detail._datadog', () => {
    const event = { version: '0', id: 'x', 'detail-type': 'OrderPlaced', source: 'shop.orders', detail: { _datadog: { 'x-datadog-trace-id': '1', 'x-datadog-parent-id': '2' }, orderId: 7 } };
    const t = inferTrigger(event);
    assert.equal(t?.kind, 'eventbridge');
    assert.deepEqual(t.tags, { 'function_trigger.event_source': 'eventbridge', 'function_trigger.event_source_arn': 'shop.orders' });
    assert.deepEqual(t.carrier, { 'x-datadog-trace-id': '1', 'x-datadog-parent-id': '2' });
    assert.equal(inferTrigger({ 'detail-type': 'd', source: 's', detail: {} })?.carrier, undefined);
  });
});

describe('inferTrigger: anything else is no trigger, never an error', () => {
  const cases: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', 'hello'],
    ['an array', [1, 2]],
    ['a direct-invoke payload', { name: 'x' }],
    ['empty Records', { Records: [] }],
    ['Records of null', { Records: [null] }],
    ['Records not an array', { Records: { eventSource: 'aws:sqs' } }],
    ['an unknown event source', { Records: [{ eventSource: 'aws:mq' }] }],
    ['requestContext without any marker', { requestContext: { foo: 1 } }],
    ['requestContext of the wrong type', { requestContext: 'x', httpMethod: 'GET' }],
    ['REST markers of the wrong types', { requestContext: { stage: 1 }, httpMethod: 'GET', resource: '/' }],
    ['2.0 without rawQueryString', { version: '2.0', requestContext: { domainName: 'x' } }],
    ['EventBridge without detail', { 'detail-type': 'x', source: 'y' }],
  ];
  for (const [name, event] of cases) {
    test(name, () => assert.equal(inferTrigger(event), undefined));
  }

  test('malformed carriers and headers are dropped, the trigger is kept', () => {
    const sqs = inferTrigger({ Records: [{ eventSource: 'aws:sqs', body: '{"_datadog": oops', messageAttributes: { _datadog: { stringValue: 'not json' } } }] });
    assert.equal(sqs?.kind, 'sqs');
    assert.equal(sqs.carrier, undefined);
    const sns = inferTrigger({ Records: [{ EventSource: 'aws:sns', Sns: { MessageAttributes: { _datadog: { Type: 'String', Value: 17 } } } }] });
    assert.equal(sns?.kind, 'sns');
    assert.equal(sns.carrier, undefined);
    const http = inferTrigger({ version: '2.0', rawQueryString: '', headers: { a: 1, b: ['x'], c: 'ok' }, requestContext: { domainName: 'x.execute-api.r.localhost', http: 'bad' } });
    assert.equal(http?.kind, 'api-gateway-http');
    assert.deepEqual(http.headers, { c: 'ok' });
  });
});
