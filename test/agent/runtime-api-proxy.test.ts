import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRuntimeApiProxy, type RuntimeApiProxy } from '../../src/agent/proxy/runtime-api-proxy.ts';
import type { InterceptVerdict, InvocationEventInfo, ProxyInterceptor } from '../../src/agent/model.ts';

interface QueuedEvent {
  requestId: string;
  body: Buffer;
  headers?: Record<string, string>;
  status?: number;
}

interface Received {
  requestId: string;
  kind: 'response' | 'error';
  body: Buffer;
  headers: http.IncomingHttpHeaders;
  trailers: Record<string, string | undefined>;
}

/** A small Runtime API: /next hands out queued events (waiting when there are none), /response and /error record. */
class FakeRuntimeApi {
  readonly server: http.Server;
  readonly received: Received[] = [];
  readonly other: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }> = [];
  /** Request ids whose /response is refused with 400. */
  readonly refuse = new Set<string>();
  /** Called on each chunk of a response body as it arrives. */
  onChunk: ((chunk: Buffer) => void) | undefined;
  nextCalls = 0;
  #queue: QueuedEvent[] = [];
  #waiting: ServerResponse[] = [];

  get waiting(): number {
    return this.#waiting.length;
  }

  constructor() {
    this.server = http.createServer((req, res) => this.#route(req, res));
    this.server.keepAliveTimeout = 0;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  push(event: QueuedEvent): void {
    const waiting = this.#waiting.shift();
    if (waiting) this.#deliver(waiting, event);
    else this.#queue.push(event);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #deliver(res: ServerResponse, e: QueuedEvent): void {
    res.writeHead(e.status ?? 200, {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Aws-Request-Id': e.requestId,
      'Lambda-Runtime-Deadline-Ms': '1700000003000',
      'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:123456789012:function:f',
      'Lambda-Runtime-Trace-Id': 'Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1',
      ...e.headers,
      'Content-Length': e.body.length,
    });
    res.end(e.body);
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      this.nextCalls++;
      const e = this.#queue.shift();
      if (e) this.#deliver(res, e);
      else {
        this.#waiting.push(res);
        res.once('close', () => {
          const i = this.#waiting.indexOf(res);
          if (i >= 0) this.#waiting.splice(i, 1);
        });
      }
      return;
    }
    const m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      this.onChunk?.(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (!m) {
        this.other.push({ method: req.method ?? '', url, headers: req.headers, body });
        res.writeHead(201, { 'X-Upstream': 'yes', 'Content-Type': 'application/octet-stream' });
        res.end(Buffer.concat([Buffer.from('echo:'), body]));
        return;
      }
      // Kept as sent: the tests' ids need no decoding, and a malformed one must reach here intact.
      const requestId = m[1]!;
      if (m[2] === 'response' && this.refuse.has(requestId)) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end('{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}');
        return;
      }
      this.received.push({ requestId, kind: m[2] as 'response' | 'error', body, headers: req.headers, trailers: { ...req.trailers } });
      res.writeHead(202, { 'Content-Type': 'application/json' });
      res.end('{"status":"OK"}');
    });
  }
}

/** An interceptor that records what it is told. */
class Recorder implements ProxyInterceptor {
  events: InvocationEventInfo[] = [];
  responses: Array<{ requestId: string; body: Buffer | undefined; upstreamHadIt: boolean }> = [];
  errors: Array<{ requestId: string; body: Buffer; errorType: string | undefined }> = [];
  verdict: (info: InvocationEventInfo) => InterceptVerdict | Promise<InterceptVerdict> = () => undefined;
  upstream: FakeRuntimeApi | undefined;
  onInvocationEvent(info: InvocationEventInfo): InterceptVerdict | Promise<InterceptVerdict> {
    this.events.push(info);
    return this.verdict(info);
  }
  onInvocationResponse(requestId: string, body: Buffer | undefined): void {
    const upstreamHadIt = this.upstream?.received.some((r) => r.requestId === requestId) ?? false;
    this.responses.push({ requestId, body, upstreamHadIt });
  }
  onInvocationError(requestId: string, body: Buffer, errorType: string | undefined): void {
    this.errors.push({ requestId, body, errorType });
  }
}

/** The runtime's side: a keep-alive client of the proxy, as runtime interface clients are. */
const runtimeAgent = new http.Agent({ keepAlive: true });
after(() => runtimeAgent.destroy());

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function call(port: number, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: runtimeAgent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function setup(options: { teeLimitBytes?: number; interceptors?: ProxyInterceptor[] } = {}) {
  const upstream = new FakeRuntimeApi();
  const address = await upstream.listen();
  const recorder = new Recorder();
  recorder.upstream = upstream;
  const errors: string[] = [];
  const proxy = await startRuntimeApiProxy({
    host: '127.0.0.1',
    port: 0,
    upstream: address,
    interceptors: options.interceptors ?? [recorder],
    onError: (m) => errors.push(m),
    ...(options.teeLimitBytes !== undefined ? { teeLimitBytes: options.teeLimitBytes } : {}),
  });
  const close = async () => {
    await proxy.close();
    await upstream.close();
  };
  return { upstream, proxy, recorder, errors, close };
}

const next = (p: RuntimeApiProxy) => call(p.port, 'GET', '/2018-06-01/runtime/invocation/next');

describe('Runtime API proxy: passthrough', () => {
  test('/next: the runtime gets the event byte for byte, with its headers; interceptors see it first', async () => {
    const { upstream, proxy, recorder, errors, close } = await setup();
    try {
      const body = Buffer.concat([Buffer.from('{"k":"'), Buffer.from([0xc3, 0xa9, 0xe2, 0x82, 0xac]), Buffer.from('","n":1}')]);
      upstream.push({ requestId: 'req-1', body });
      const answer = await next(proxy);
      assert.equal(answer.status, 200);
      assert.ok(answer.body.equals(body));
      assert.equal(answer.headers['lambda-runtime-aws-request-id'], 'req-1');
      assert.equal(answer.headers['lambda-runtime-deadline-ms'], '1700000003000');
      assert.equal(answer.headers['lambda-runtime-invoked-function-arn'], 'arn:aws:lambda:us-east-1:123456789012:function:f');
      assert.equal(answer.headers['lambda-runtime-trace-id'], 'Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1');
      assert.equal(answer.headers['content-type'], 'application/json');
      assert.equal(recorder.events.length, 1);
      assert.equal(recorder.events[0]!.requestId, 'req-1');
      assert.ok(recorder.events[0]!.event.equals(body));
      assert.equal(recorder.events[0]!.headers['lambda-runtime-deadline-ms'], '1700000003000');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('/next waits as long as the upstream does (long poll)', async () => {
    const { upstream, proxy, close } = await setup();
    try {
      const pending = next(proxy);
      // The upstream holds the poll until an event exists.
      while (upstream.nextCalls === 0) await new Promise((r) => setImmediate(r));
      upstream.push({ requestId: 'late', body: Buffer.from('{}') });
      assert.equal((await pending).headers['lambda-runtime-aws-request-id'], 'late');
    } finally {
      await close();
    }
  });

  test('/response is forwarded unchanged and interceptors hear of it after the upstream had it', async () => {
    const { upstream, proxy, recorder, close } = await setup();
    try {
      const body = Buffer.from('{"statusCode":200,"body":"hello"}');
      const answer = await call(proxy.port, 'POST', '/2018-06-01/runtime/invocation/req-1/response', body, { 'Content-Type': 'application/json' });
      assert.equal(answer.status, 202);
      assert.equal(answer.body.toString(), '{"status":"OK"}');
      assert.equal(upstream.received.length, 1);
      assert.ok(upstream.received[0]!.body.equals(body));
      assert.equal(upstream.received[0]!.headers['content-type'], 'application/json');
      assert.equal(recorder.responses.length, 1);
      assert.equal(recorder.responses[0]!.requestId, 'req-1');
      assert.ok(recorder.responses[0]!.body!.equals(body));
      assert.equal(recorder.responses[0]!.upstreamHadIt, true);
    } finally {
      await close();
    }
  });

  test('/error is forwarded with its error type; interceptors get body and type', async () => {
    const { upstream, proxy, recorder, close } = await setup();
    try {
      const body = Buffer.from('{"errorMessage":"boom","errorType":"Error","stackTrace":[]}');
      const answer = await call(proxy.port, 'POST', '/2018-06-01/runtime/invocation/req-2/error', body, {
        'Lambda-Runtime-Function-Error-Type': 'Unhandled',
        'Content-Type': 'application/vnd.aws.lambda.error+json',
      });
      assert.equal(answer.status, 202);
      assert.equal(upstream.received[0]!.kind, 'error');
      assert.equal(upstream.received[0]!.headers['lambda-runtime-function-error-type'], 'Unhandled');
      assert.ok(upstream.received[0]!.body.equals(body));
      assert.deepEqual(recorder.errors.map((e) => [e.requestId, e.body.toString(), e.errorType]), [['req-2', body.toString(), 'Unhandled']]);
    } finally {
      await close();
    }
  });

  test('other paths pass through with method, query, headers, body and status', async () => {
    const { upstream, proxy, recorder, close } = await setup();
    try {
      const answer = await call(proxy.port, 'PUT', '/2022-07-01/telemetry?x=1', Buffer.from('{"types":["platform"]}'), { 'Lambda-Extension-Identifier': 'abc' });
      assert.equal(answer.status, 201);
      assert.equal(answer.headers['x-upstream'], 'yes');
      assert.equal(answer.body.toString(), 'echo:{"types":["platform"]}');
      assert.deepEqual(upstream.other.map((o) => [o.method, o.url, o.headers['lambda-extension-identifier'], o.body.toString()]), [
        ['PUT', '/2022-07-01/telemetry?x=1', 'abc', '{"types":["platform"]}'],
      ]);
      assert.equal(recorder.events.length + recorder.responses.length + recorder.errors.length, 0);
    } finally {
      await close();
    }
  });

  test('an upstream error answer on /next (403) passes through without interceptors', async () => {
    const { upstream, proxy, recorder, close } = await setup();
    try {
      upstream.push({ requestId: 'x', status: 403, body: Buffer.from('{"errorType":"InvalidStateTransition","errorMessage":"no"}') });
      const answer = await next(proxy);
      assert.equal(answer.status, 403);
      assert.equal(answer.body.toString(), '{"errorType":"InvalidStateTransition","errorMessage":"no"}');
      assert.equal(recorder.events.length, 0);
    } finally {
      await close();
    }
  });

  test('a response the upstream refuses (400) is relayed and not reported as the invocation response', async () => {
    const { upstream, proxy, recorder, close } = await setup();
    try {
      upstream.refuse.add('stale');
      const answer = await call(proxy.port, 'POST', '/2018-06-01/runtime/invocation/stale/response', Buffer.from('{}'));
      assert.equal(answer.status, 400);
      assert.match(answer.body.toString(), /InvalidRequestID/);
      assert.equal(recorder.responses.length, 0);
    } finally {
      await close();
    }
  });
});

describe('Runtime API proxy: streamed responses', () => {
  /** Posts a streamed response the way the Node.js runtime client does, chunk by chunk. */
  function streamResponse(port: number, requestId: string, parts: Array<Buffer | (() => Promise<void>)>, trailers?: Record<string, string>): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        'Content-Type': 'application/vnd.awslambda.http-integration-response',
      };
      if (trailers) headers.Trailer = Object.keys(trailers).join(', ');
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/2018-06-01/runtime/invocation/${requestId}/response`, headers, agent: runtimeAgent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      void (async () => {
        for (const part of parts) {
          if (Buffer.isBuffer(part)) req.write(part);
          else await part();
        }
        if (trailers) req.addTrailers(trailers);
        req.end();
      })();
    });
  }

  test('chunks reach the upstream as they are written (not buffered), and trailers pass through', async () => {
    const { upstream, proxy, recorder, close } = await setup();
    try {
      let firstChunkArrived!: () => void;
      const arrived = new Promise<void>((r) => (firstChunkArrived = r));
      upstream.onChunk = (c) => {
        if (c.toString().includes('prelude')) firstChunkArrived();
      };
      const prelude = Buffer.concat([Buffer.from('{"statusCode":200,"prelude":true}'), Buffer.alloc(8)]);
      const errorBody = Buffer.from('{"errorType":"Error","errorMessage":"mid-stream"}').toString('base64');
      const answer = await streamResponse(
        proxy.port,
        'stream-1',
        // The second chunk is only written once the upstream got the first: a proxy that
        // buffered the body would never let this complete.
        [prelude, () => arrived, Buffer.from('part two')],
        { 'Lambda-Runtime-Function-Error-Type': 'Function.StreamError', 'Lambda-Runtime-Function-Error-Body': errorBody },
      );
      assert.equal(answer.status, 202);
      const got = upstream.received[0]!;
      assert.ok(got.body.equals(Buffer.concat([prelude, Buffer.from('part two')])));
      assert.equal(got.headers['lambda-runtime-function-response-mode'], 'streaming');
      assert.equal(got.trailers['lambda-runtime-function-error-type'], 'Function.StreamError');
      assert.equal(got.trailers['lambda-runtime-function-error-body'], errorBody);
      // The error trailers make it an error for the interceptors.
      assert.equal(recorder.responses.length, 0);
      assert.deepEqual(recorder.errors.map((e) => [e.requestId, e.body.toString(), e.errorType]), [['stream-1', '{"errorType":"Error","errorMessage":"mid-stream"}', 'Function.StreamError']]);
    } finally {
      await close();
    }
  });

  test('a stream longer than the tee limit is forwarded whole; interceptors get undefined', async () => {
    const { upstream, proxy, recorder, close } = await setup({ teeLimitBytes: 16 });
    try {
      const parts = [Buffer.from('0123456789'), Buffer.from('abcdefghij'), Buffer.from('KLMNOPQRST')];
      const answer = await streamResponse(proxy.port, 'stream-2', parts);
      assert.equal(answer.status, 202);
      assert.equal(upstream.received[0]!.body.toString(), '0123456789abcdefghijKLMNOPQRST');
      assert.deepEqual(recorder.responses.map((r) => [r.requestId, r.body]), [['stream-2', undefined]]);
    } finally {
      await close();
    }
  });
});

describe('Runtime API proxy: blocking', () => {
  test('a blocked event is answered upstream; the runtime receives the next event instead', async () => {
    const blocker = new Recorder();
    const observer = new Recorder();
    const blockBody = Buffer.from('{"statusCode":403,"body":"blocked"}');
    blocker.verdict = async (info) => (info.requestId === 'attack' ? { respond: blockBody } : undefined);
    const { upstream, proxy, close } = await setup({ interceptors: [blocker, observer] });
    try {
      upstream.push({ requestId: 'attack', body: Buffer.from('{"q":"1 OR 1=1"}') });
      upstream.push({ requestId: 'benign', body: Buffer.from('{"q":"shoes"}') });
      const answer = await next(proxy);
      assert.equal(answer.headers['lambda-runtime-aws-request-id'], 'benign');
      assert.equal(answer.body.toString(), '{"q":"shoes"}');
      assert.equal(upstream.received.length, 1);
      assert.equal(upstream.received[0]!.requestId, 'attack');
      assert.equal(upstream.received[0]!.kind, 'response');
      assert.ok(upstream.received[0]!.body.equals(blockBody));
      assert.equal(upstream.received[0]!.headers['content-type'], 'application/json');
      // Every interceptor saw both events, and heard the blocked one's response.
      assert.deepEqual(observer.events.map((e) => e.requestId), ['attack', 'benign']);
      assert.deepEqual(observer.responses.map((r) => [r.requestId, r.body?.toString()]), [['attack', blockBody.toString()]]);
      assert.equal(upstream.nextCalls, 2);
    } finally {
      await close();
    }
  });

  test('a block the upstream refuses lets the event through to the handler', async () => {
    const blocker = new Recorder();
    blocker.verdict = () => ({ respond: Buffer.from('{"statusCode":403}') });
    const { upstream, proxy, errors, close } = await setup({ interceptors: [blocker] });
    try {
      upstream.refuse.add('attack');
      upstream.push({ requestId: 'attack', body: Buffer.from('{"x":1}') });
      const answer = await next(proxy);
      assert.equal(answer.headers['lambda-runtime-aws-request-id'], 'attack');
      assert.equal(answer.body.toString(), '{"x":1}');
      assert.equal(blocker.responses.length, 0);
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /refused the blocking response of attack \(400\)/);
    } finally {
      await close();
    }
  });
});

describe('Runtime API proxy: failures', () => {
  test('an interceptor that throws (or rejects) is logged and ignored: the event passes', async () => {
    const throwing: ProxyInterceptor = {
      onInvocationEvent: () => {
        throw new Error('sync boom');
      },
      onInvocationResponse: () => {
        throw new Error('response boom');
      },
      onInvocationError: () => {
        throw new Error('error boom');
      },
    };
    const rejecting: ProxyInterceptor = {
      onInvocationEvent: () => Promise.reject(new Error('async boom')),
      onInvocationResponse: () => {},
      onInvocationError: () => {},
    };
    const recorder = new Recorder();
    const { upstream, proxy, errors, close } = await setup({ interceptors: [throwing, rejecting, recorder] });
    try {
      upstream.push({ requestId: 'r', body: Buffer.from('{"a":1}') });
      const answer = await next(proxy);
      assert.equal(answer.body.toString(), '{"a":1}');
      const posted = await call(proxy.port, 'POST', '/2018-06-01/runtime/invocation/r/response', Buffer.from('"ok"'));
      assert.equal(posted.status, 202);
      const failed = await call(proxy.port, 'POST', '/2018-06-01/runtime/invocation/r/error', Buffer.from('{}'));
      assert.equal(failed.status, 202);
      assert.equal(recorder.events.length, 1);
      assert.equal(recorder.responses.length, 1);
      assert.deepEqual(errors, [
        'Runtime API proxy: an interceptor failed on event r: sync boom',
        'Runtime API proxy: an interceptor failed on event r: async boom',
        'Runtime API proxy: an interceptor failed on the response of r: response boom',
        'Runtime API proxy: an interceptor failed on the error of r: error boom',
      ]);
    } finally {
      await close();
    }
  });

  test('upstream unreachable: 502 with a JSON error, for /next and for everything else; no crash', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const errors: string[] = [];
    const proxy = await startRuntimeApiProxy({ host: '127.0.0.1', port: 0, upstream: `127.0.0.1:${port}`, interceptors: [], onError: (m) => errors.push(m) });
    try {
      for (const [method, path] of [
        ['GET', '/2018-06-01/runtime/invocation/next'],
        ['POST', '/2018-06-01/runtime/invocation/r/response'],
        ['POST', '/2020-01-01/extension/register'],
      ] as const) {
        const answer = await call(proxy.port, method, path, method === 'POST' ? Buffer.from('{}') : undefined);
        assert.equal(answer.status, 502, path);
        assert.equal(answer.headers['content-type'], 'application/json');
        const parsed = JSON.parse(answer.body.toString());
        assert.equal(parsed.errorType, 'Runtime.ProxyUpstreamUnavailable');
        assert.match(parsed.errorMessage, /unreachable/);
      }
      assert.equal(errors.length, 3);
    } finally {
      await proxy.close();
    }
  });

  test('a malformed upstream address is refused at start', async () => {
    for (const upstream of ['nohost', '127.0.0.1:0', '127.0.0.1:99999', ':9001', '127.0.0.1:abc']) {
      await assert.rejects(startRuntimeApiProxy({ host: '127.0.0.1', port: 0, upstream, interceptors: [] }), /upstream must be host:port/, upstream);
    }
  });

  test('a malformed request id in the path is forwarded, not a crash', async () => {
    const { upstream, proxy, recorder, close } = await setup();
    try {
      const answer = await call(proxy.port, 'POST', '/2018-06-01/runtime/invocation/%E0%A4%A/response', Buffer.from('{}'));
      assert.equal(answer.status, 202);
      assert.equal(recorder.responses[0]!.requestId, '%E0%A4%A');
      assert.equal(upstream.received[0]!.requestId, '%E0%A4%A');
    } finally {
      await close();
    }
  });

  test('an event over 6 MB is delivered unchanged without interceptors', async () => {
    const { upstream, proxy, recorder, errors, close } = await setup();
    try {
      const body = Buffer.alloc(6 * 1024 * 1024 + 1000, 0x61);
      upstream.push({ requestId: 'huge', body });
      const answer = await next(proxy);
      assert.equal(answer.body.length, body.length);
      assert.ok(answer.body.equals(body));
      assert.equal(recorder.events.length, 0);
      assert.match(errors[0]!, /event huge is larger than/);
    } finally {
      await close();
    }
  });

  test('a runtime that leaves during the long poll does not break the next one', async () => {
    const { upstream, proxy, close } = await setup();
    try {
      await new Promise<void>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/2018-06-01/runtime/invocation/next' });
        req.on('error', () => resolve());
        req.end();
        const poll = setInterval(() => {
          if (upstream.nextCalls > 0) {
            clearInterval(poll);
            req.destroy();
          }
        }, 1);
      });
      const pending = next(proxy);
      // The abandoned poll is gone upstream, the new one is waiting.
      while (upstream.nextCalls < 2 || upstream.waiting !== 1) await new Promise((r) => setTimeout(r, 1));
      upstream.push({ requestId: 'after', body: Buffer.from('{}') });
      assert.equal((await pending).headers['lambda-runtime-aws-request-id'], 'after');
    } finally {
      await close();
    }
  });
});
