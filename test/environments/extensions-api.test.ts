/**
 * The Extensions API over HTTP, in process: registration rules, the identifier checks,
 * each extension's state machine with RIE's 403 types and messages, event delivery, and
 * bad requests answered without taking the server down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtensionRegistry, type Extension } from '../../src/environments/extension-registry.ts';
import { extensionsRoutes } from '../../src/environments/extensions-api.ts';
import { RuntimeApiServer, errorReply, type RuntimeApiCore } from '../../src/environments/runtime-api-server.ts';

const metadata = { functionName: 'fn', functionVersion: '$LATEST', handler: 'index.handler', accountId: '123456789012' };

/** The Runtime API half is not under test here: it refuses everything. */
const noRuntime: RuntimeApiCore = {
  next: () => errorReply(403, 'InvalidStateTransition', 'no runtime'),
  response: () => errorReply(400, 'InvalidRequestID', 'Invalid request ID'),
  responseTooLarge: () => errorReply(400, 'InvalidRequestID', 'Invalid request ID'),
  responseStream: async () => errorReply(400, 'InvalidRequestID', 'Invalid request ID'),
  error: () => errorReply(400, 'InvalidRequestID', 'Invalid request ID'),
  initError: () => errorReply(403, 'InvalidStateTransition', 'no runtime'),
};

async function withApi(
  options: { external?: string[]; managed?: boolean },
  body: (ctx: { base: string; registry: ExtensionRegistry; hooks: string[] }) => Promise<void>,
): Promise<void> {
  const hooks: string[] = [];
  const registry = new ExtensionRegistry(metadata, options.managed ?? false, {
    onRegistered: (e: Extension) => hooks.push(`registered ${e.name}`),
    onReady: (e: Extension) => hooks.push(`ready ${e.name}`),
    onInitError: (e: Extension, t: string) => hooks.push(`init-error ${e.name} ${t}`),
    onExitError: (e: Extension, t: string) => hooks.push(`exit-error ${e.name} ${t}`),
  });
  for (const name of options.external ?? []) registry.addExternal(name);
  const server = new RuntimeApiServer(noRuntime, [extensionsRoutes(registry)]);
  const address = await server.listen();
  try {
    await body({ base: `http://${address}/2020-01-01/extension`, registry, hooks });
  } finally {
    registry.destroyParked();
    await server.close();
  }
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: unknown }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const register = (base: string, name: string | undefined, body: string, headers: Record<string, string> = {}) =>
  call(`${base}/register`, { method: 'POST', headers: { ...(name === undefined ? {} : { 'Lambda-Extension-Name': name }), ...headers }, body });

const refused = (status: number, errorType: string, errorMessage: string) => ({ status, body: { errorMessage, errorType } });

test('register: external by file name, internal otherwise; the answer and the accountId feature', async () => {
  await withApi({ external: ['my-ext'] }, async ({ base, hooks }) => {
    const ext = await register(base, 'my-ext', '{"events":["INVOKE","SHUTDOWN"]}', { 'Lambda-Extension-Accept-Feature': 'accountId' });
    assert.equal(ext.status, 200);
    assert.match(ext.headers.get('lambda-extension-identifier')!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(ext.body, { functionName: 'fn', functionVersion: '$LATEST', handler: 'index.handler', accountId: '123456789012' });
    const internal = await register(base, 'in-process', '{"events":["INVOKE"]}');
    assert.equal(internal.status, 200);
    assert.deepEqual(internal.body, { functionName: 'fn', functionVersion: '$LATEST', handler: 'index.handler' }, 'no accountId unless asked');
    // An empty body registers for no events.
    assert.equal((await register(base, 'quiet', '')).status, 200);
    assert.deepEqual(hooks, ['registered my-ext', 'registered in-process', 'registered quiet']);
  });
});

test('register refusals: name, body, events, twice, closed, too many', async () => {
  await withApi({ external: ['ext'] }, async ({ base, registry }) => {
    const check = async (res: Promise<{ status: number; body: unknown }>, expected: { status: number; body: unknown }) => {
      const r = await res;
      assert.deepEqual({ status: r.status, body: r.body }, expected);
    };
    await check(register(base, undefined, '{}'), refused(403, 'Extension.InvalidExtensionName', 'Empty extension name'));
    let jsonError = '';
    try {
      JSON.parse('{not json');
    } catch (err) {
      jsonError = (err as Error).message;
    }
    await check(register(base, 'ext', '{not json'), refused(403, 'InvalidRequestFormat', jsonError));
    await check(register(base, 'ext', '[1]'), refused(403, 'InvalidRequestFormat', 'the request body must be a JSON object'));
    await check(register(base, 'ext', '{"events":"INVOKE"}'), refused(403, 'InvalidRequestFormat', 'events must be an array of strings'));
    await check(register(base, 'ext', '{"configurationKeys":["a"]}'), refused(403, 'InvalidRequestFormat', 'configurationKeys are deprecated; use environment variables instead'));
    await check(register(base, 'ext', '{"events":["RESTORE"]}'), refused(403, 'Extension.InvalidEventType', 'RESTORE: ErrorInvalidEventType'));
    await check(register(base, 'internal', '{"events":["SHUTDOWN"]}'), refused(403, 'Extension.InvalidEventType', 'SHUTDOWN: ShutdownEventNotSupportedForInternalExtension'));
    await check(register(base, 'big', 'x'.repeat(70 * 1024)), refused(403, 'InvalidRequestFormat', 'The request body is larger than 65536 bytes'));
    assert.equal((await register(base, 'ext', '{"events":["INVOKE"]}')).status, 200);
    await check(register(base, 'ext', '{}'), refused(403, 'Extension.InvalidExtensionState', 'State transition from Registered to Registered failed for extension ext. Error: State transition is not allowed'));
    assert.equal((await register(base, 'twin', '{}')).status, 200);
    await check(register(base, 'twin', '{}'), refused(403, 'Extension.InvalidExtensionState', 'Extension with this name already registered'));
    for (let i = registry.size; i < 10; i++) assert.equal((await register(base, `more-${i}`, '{}')).status, 200);
    await check(register(base, 'eleventh', '{}'), refused(403, 'Extension.TooManyExtensions', 'Extension limit (10) reached'));
    registry.closeRegistration();
    await check(register(base, 'late', '{}'), refused(403, 'Extension.RegistrationClosed', 'Extension registration closed already'));
  });
});

test('managed instances: external extensions may register for SHUTDOWN only, internal ones for nothing', async () => {
  await withApi({ external: ['ext'], managed: true }, async ({ base }) => {
    assert.deepEqual((await register(base, 'ext', '{"events":["INVOKE","SHUTDOWN"]}')).body, { errorMessage: 'INVOKE: ErrorInvalidEventType', errorType: 'Extension.InvalidEventType' });
    assert.equal((await register(base, 'ext', '{"events":["SHUTDOWN"]}')).status, 200);
    assert.deepEqual((await register(base, 'internal', '{"events":["INVOKE"]}')).body, { errorMessage: 'No events allowed for internal extensions', errorType: 'Extension.InvalidEventType' });
    assert.equal((await register(base, 'internal', '{}')).status, 200);
  });
});

test('event/next: identifier checks, the state machine, delivery of events with an event identifier', async () => {
  await withApi({ external: ['ext'] }, async ({ base, registry, hooks }) => {
    const next = (id?: string) => call(`${base}/event/next`, { headers: id === undefined ? {} : { 'Lambda-Extension-Identifier': id } });
    assert.deepEqual((await next()).body, { errorMessage: 'Missing Lambda-Extension-Identifier header', errorType: 'Extension.MissingExtensionIdentifier' });
    assert.deepEqual((await next('not-a-uuid')).body, { errorMessage: 'Invalid Lambda-Extension-Identifier', errorType: 'Extension.InvalidExtensionIdentifier' });
    const stranger = '3da1f2dc-3222-475e-9205-e2e6c6318895';
    const unknown = await next(stranger);
    assert.deepEqual([unknown.status, unknown.body], [403, { errorMessage: `Unknown extension ${stranger}`, errorType: 'Extension.UnknownExtensionIdentifier' }]);

    const id = (await register(base, 'ext', '{"events":["INVOKE","SHUTDOWN"]}')).headers.get('lambda-extension-identifier')!;
    const ext = registry.get(id)!;
    const waiting = next(id.toUpperCase()); // identifiers are UUIDs, case does not matter
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ext.state, 'ready');
    assert.deepEqual(hooks, ['registered ext', 'ready ext']);
    // A second long-poll while the first is open: Ready -> Ready is refused.
    assert.deepEqual((await next(id)).body, {
      errorMessage: `State transition from Ready to Ready failed for extension ${id}. Error: State transition is not allowed`,
      errorType: 'Extension.InvalidExtensionState',
    });
    const invoke = { eventType: 'INVOKE' as const, deadlineMs: 1_700_000_000_000, requestId: 'r1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fn', tracing: { type: 'X-Amzn-Trace-Id' as const, value: 'Root=1-0-0' } };
    registry.deliver(ext, invoke);
    const got = await waiting;
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, invoke);
    assert.match(got.headers.get('lambda-extension-event-identifier')!, /^[0-9a-f-]{36}$/);
    assert.equal(ext.state, 'running');
    // An event while it works is kept for its next call.
    registry.deliver(ext, { eventType: 'SHUTDOWN', shutdownReason: 'spindown', deadlineMs: 1_700_000_002_000 });
    const shutdown = await next(id);
    assert.deepEqual(shutdown.body, { eventType: 'SHUTDOWN', shutdownReason: 'spindown', deadlineMs: 1_700_000_002_000 });
  });
});

test('init/error and exit/error: the header is required; states decide; errors are recorded once', async () => {
  await withApi({ external: ['a', 'b'] }, async ({ base, hooks }) => {
    const idA = (await register(base, 'a', '{}')).headers.get('lambda-extension-identifier')!;
    const idB = (await register(base, 'b', '{}')).headers.get('lambda-extension-identifier')!;
    const post = (kind: 'init' | 'exit', id: string | undefined, type?: string) =>
      call(`${base}/${kind}/error`, {
        method: 'POST',
        headers: { ...(id ? { 'Lambda-Extension-Identifier': id } : {}), ...(type ? { 'Lambda-Extension-Function-Error-Type': type } : {}) },
        body: '{"errorMessage":"bad","errorType":"Bad"}',
      });
    assert.deepEqual((await post('init', undefined, 'X')).body, { errorMessage: 'Missing Lambda-Extension-Identifier header', errorType: 'Extension.MissingExtensionIdentifier' });
    assert.deepEqual((await post('init', idA)).body, { errorMessage: 'Lambda-Extension-Function-Error-Type not found', errorType: 'Extension.MissingHeader' });
    assert.deepEqual((await post('init', '3da1f2dc-3222-475e-9205-e2e6c6318895', 'X')).body, { errorMessage: 'Unknown Lambda-Extension-Identifier', errorType: 'Extension.UnknownExtensionIdentifier' });
    assert.deepEqual(await post('init', idA, 'Extension.ConfigInvalid').then((r) => [r.status, r.body]), [202, { status: 'OK' }]);
    assert.equal((await post('init', idA, 'Extension.Again')).status, 202, 'again: accepted, first error kept');
    assert.deepEqual((await post('exit', idA, 'Extension.Late')).body, {
      errorMessage: `State transition from InitError to Exited failed for extension ${idA}. Error: State transition is not allowed`,
      errorType: 'Extension.InvalidExtensionState',
    });
    const nextA = await call(`${base}/event/next`, { headers: { 'Lambda-Extension-Identifier': idA } });
    assert.equal((nextA.body as { errorType: string }).errorType, 'Extension.InvalidExtensionState');
    assert.equal((await post('exit', idB, 'Extension.Broken')).status, 202);
    assert.deepEqual(hooks.filter((h) => h.includes('error')), ['init-error a Extension.ConfigInvalid', 'exit-error b Extension.Broken']);
  });
});
