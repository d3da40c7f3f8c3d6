/**
 * The deny-list routes and `nimbus security` against a real Nimbus server: adding and removing
 * IPs, CIDRs and users, the ETag agents poll with, bad input refused with
 * InvalidParameterValueException, lists that survive a restart; and `nimbus security events`,
 * against the real server and against a stand-in that returns events, for its query and output.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestServer, repoRoot } from '../helpers/nimbus.ts';

const run = promisify(execFile);
const cli = path.join(repoRoot, 'src', 'cli', 'main.ts');
let server: TestServer;

before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server.stop();
});

function nimbus(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [cli, ...args, '--endpoint', server.url]);
}

async function failing(args: string[], pattern: RegExp): Promise<void> {
  await assert.rejects(nimbus(...args), (err: Error & { code?: number; stderr?: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr!, pattern);
    return true;
  });
}

interface Entry {
  value: string;
  reason?: string;
  addedAt: string;
}

async function denyList(): Promise<{ status: number; etag: string | null; body: { ips: Entry[]; users: Entry[]; etag: string } }> {
  const res = await server.fetch('/nimbus/v1/security/deny-list');
  return { status: res.status, etag: res.headers.get('etag'), body: (await res.json()) as { ips: Entry[]; users: Entry[]; etag: string } };
}

describe('deny-list routes', () => {
  test('add, list with an ETag, 304 when unchanged, remove', async () => {
    const empty = await denyList();
    assert.equal(empty.status, 200);
    assert.deepEqual([empty.body.ips, empty.body.users], [[], []]);
    assert.match(empty.etag!, /^"[\w-]+"$/);

    const post = async (segment: string, body: unknown) =>
      server.fetch(`/nimbus/v1/security/deny-list/${segment}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const created = await post('ips', { ip: '203.0.113.7', reason: 'credential stuffing' });
    assert.equal(created.status, 201);
    assert.deepEqual(Object.keys((await created.json()) as object).sort(), ['addedAt', 'reason', 'value']);
    assert.equal((await post('ips', { ip: '203.0.113.7' })).status, 200, 'adding again keeps the entry');
    assert.equal((await post('ips', { ip: '10.1.2.3/8' })).status, 201);
    assert.equal((await post('users', { userId: 'mallory' })).status, 201);

    const listed = await denyList();
    assert.deepEqual(listed.body.ips.map((e) => [e.value, e.reason]), [['10.0.0.0/8', undefined], ['203.0.113.7', 'credential stuffing']]);
    assert.deepEqual(listed.body.users.map((e) => e.value), ['mallory']);
    assert.notEqual(listed.etag, empty.etag);
    assert.equal(listed.body.etag, listed.etag);

    const unchanged = await server.fetch('/nimbus/v1/security/deny-list', { headers: { 'if-none-match': listed.etag! } });
    assert.equal(unchanged.status, 304);
    assert.equal(await unchanged.text(), '');
    const stale = await server.fetch('/nimbus/v1/security/deny-list', { headers: { 'if-none-match': empty.etag! } });
    assert.equal(stale.status, 200);
    await stale.arrayBuffer();

    // A CIDR travels in one path segment, its slash encoded.
    assert.equal((await server.fetch(`/nimbus/v1/security/deny-list/ips/${encodeURIComponent('10.0.0.0/8')}`, { method: 'DELETE' })).status, 204);
    assert.equal((await server.fetch('/nimbus/v1/security/deny-list/users/mallory', { method: 'DELETE' })).status, 204);
    const gone = await server.fetch('/nimbus/v1/security/deny-list/users/mallory', { method: 'DELETE' });
    assert.equal(gone.status, 404);
    assert.equal(gone.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
    assert.deepEqual((await denyList()).body.ips.map((e) => e.value), ['203.0.113.7']);
  });

  test('bad input: 400 InvalidParameterValueException with a clear message', async () => {
    const bad: Array<[string, unknown, RegExp]> = [
      ['ips', { ip: '300.1.2.3' }, /is not an IPv4 or IPv6 address/],
      ['ips', { ip: '1.2.3' }, /is not an IPv4 or IPv6 address/],
      ['ips', { ip: '10.0.0.0/33' }, /prefix length must be 0 to 32/],
      ['ips', { ip: '2001:db8::/129' }, /prefix length must be 0 to 128/],
      ['ips', { ip: 'fe80::1%eth0' }, /is not an IPv4 or IPv6 address/],
      ['ips', { ip: 12345 }, /must be an IPv4 or IPv6 address/],
      ['ips', { address: '1.2.3.4' }, /name the address to deny in "ip"/],
      ['ips', { ip: '1.2.3.4', reason: 7 }, /reason must be a string/],
      ['ips', { ip: '1.2.3.4', reason: 'x'.repeat(600) }, /reason must be at most 512/],
      ['users', { userId: '' }, /userId must be a non-empty string/],
      ['users', { userId: 'a\nb' }, /control characters/],
      ['users', { userId: 'u'.repeat(300) }, /at most 256/],
    ];
    for (const [segment, body, message] of bad) {
      const res = await server.fetch(`/nimbus/v1/security/deny-list/${segment}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');
      assert.match(((await res.json()) as { message: string }).message, message);
    }
    const notJson = await server.fetch('/nimbus/v1/security/deny-list/ips', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{ip:' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
    await notJson.arrayBuffer();
    const badDelete = await server.fetch('/nimbus/v1/security/deny-list/ips/not-an-ip', { method: 'DELETE' });
    assert.equal(badDelete.status, 400);
    await badDelete.arrayBuffer();
  });
});

describe('nimbus security', () => {
  test('block-ip, block-user, deny-list (text and --json), unblock', async () => {
    assert.equal((await nimbus('security', 'block-ip', '198.51.100.0/24', '--reason', 'scanner farm')).stdout, 'denied ip 198.51.100.0/24\n');
    assert.equal((await nimbus('security', 'block-ip', '2001:DB8:0:0::1')).stdout, 'denied ip 2001:db8::1\n');
    assert.equal((await nimbus('security', 'block-user', 'eve@example.com')).stdout, 'denied user eve@example.com\n');

    const text = (await nimbus('security', 'deny-list')).stdout;
    assert.match(text, /^KIND\s+VALUE\s+ADDED\s+REASON\n/);
    assert.match(text, /ip\s+198\.51\.100\.0\/24\s+\S+Z\s+scanner farm\n/);
    assert.match(text, /user\s+eve@example\.com\s+/);

    const json = JSON.parse((await nimbus('security', 'deny-list', '--json')).stdout) as { ips: Entry[]; users: Entry[] };
    assert.ok(json.ips.some((e) => e.value === '2001:db8::1'));
    assert.deepEqual(json.users.map((e) => e.value), ['eve@example.com']);

    assert.equal((await nimbus('security', 'unblock-ip', '198.51.100.0/24')).stdout, 'allowed ip 198.51.100.0/24 again\n');
    assert.equal((await nimbus('security', 'unblock-user', 'eve@example.com', '--json')).stdout, '{\n  "removed": "eve@example.com"\n}\n');
    const after = JSON.parse((await nimbus('security', 'deny-list', '--json')).stdout) as { ips: Entry[]; users: Entry[] };
    assert.ok(!after.ips.some((e) => e.value === '198.51.100.0/24'));
    assert.deepEqual(after.users, []);
  });

  test('bad values and unknown entries fail with the server\'s message', async () => {
    await failing(['security', 'block-ip', 'not.an.ip'], /InvalidParameterValueException: "not\.an\.ip" is not an IPv4 or IPv6 address/);
    await failing(['security', 'block-ip', '10.0.0.0/40'], /prefix length must be 0 to 32/);
    await failing(['security', 'unblock-user', 'nobody'], /ResourceNotFoundException: nobody is not on the user deny list/);
    await failing(['security', 'events', '--limit', 'lots'], /--limit takes a positive integer/);
    await failing(['security', 'events', '--since', 'yesterday-ish'], /--since takes/);
  });

  test('security events against the real server: none yet; an unknown function is an error', async () => {
    assert.deepEqual(JSON.parse((await nimbus('security', 'events', '--json')).stdout), []);
    assert.equal((await nimbus('security', 'events', '--since', '1h')).stdout, 'No security events in this window.\n');
    await failing(['security', 'events', '--function', 'ghost'], /ResourceNotFoundException/);
  });
});

describe('nimbus security events output', () => {
  test('sends function, since and limit; prints a table, or the events as JSON', async () => {
    const seen: string[] = [];
    const events = [
      {
        functionName: 'shop',
        timestamp: Date.parse('2024-05-01T10:00:00Z'),
        requestId: 'r-1',
        ruleId: 'crs-942-100',
        ruleName: 'SQL Injection Attack Detected via libinjection',
        category: 'sql_injection',
        parameter: 'server.request.query.q',
        value: "1' OR '1'='1\u001b[31m",
        clientIp: '203.0.113.9',
        userAgent: 'sqlmap/1.7',
        route: '/items/{id}',
        method: 'GET',
        trigger: 'api-gateway-rest',
        blocked: true,
      },
    ];
    const stand = http.createServer((req, res) => {
      seen.push(req.url!);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ events }));
    });
    await new Promise<void>((resolve) => stand.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(stand.address() as AddressInfo).port}`;
    try {
      const before = Date.now();
      const text = (await run(process.execPath, [cli, 'security', 'events', '--function', 'shop', '--since', '2h', '--limit', '5', '--endpoint', endpoint])).stdout;
      const url = new URL(seen[0]!, endpoint);
      assert.equal(url.pathname, '/nimbus/v1/security/events');
      assert.equal(url.searchParams.get('function'), 'shop');
      assert.equal(url.searchParams.get('limit'), '5');
      const since = Number(url.searchParams.get('since'));
      assert.ok(Math.abs(before - 2 * 3_600_000 - since) < 60_000, `since=${since}`);
      const [header, row] = text.trimEnd().split('\n');
      assert.match(header!, /^TIME\s+FUNCTION\s+CATEGORY\s+RULE\s+BLOCKED\s+CLIENT IP\s+REQUEST\s+PARAMETER\s+VALUE$/);
      assert.match(row!, /^2024-05-01T10:00:00\.000Z\s+shop\s+sql_injection\s+crs-942-100\s+blocked\s+203\.0\.113\.9\s+GET \/items\/\{id\}\s+server\.request\.query\.q\s+1' OR '1'='1 \[31m$/);
      assert.ok(!text.includes('\u001b'), 'control characters from attackers are not printed');

      const json = JSON.parse((await run(process.execPath, [cli, 'security', 'events', '--json', '--endpoint', endpoint])).stdout) as unknown[];
      assert.deepEqual(json, events);
      assert.equal(new URL(seen[1]!, endpoint).searchParams.get('limit'), '100');
    } finally {
      await new Promise<void>((resolve) => stand.close(() => resolve()));
    }
  });
});

describe('persistence', () => {
  test('the deny lists survive a restart, with the same ETag', async () => {
    const original = await TestServer.start();
    const dataDir = original.dataDir;
    await run(process.execPath, [cli, 'security', 'block-ip', '192.0.2.44', '--endpoint', original.url]);
    const first = (await (await original.fetch('/nimbus/v1/security/deny-list')).json()) as { etag: string; ips: Entry[] };
    // Killed, not stopped: what was acknowledged must already be in the store.
    await original.kill();
    const again = await TestServer.start({ dataDir });
    try {
      const second = (await (await again.fetch('/nimbus/v1/security/deny-list')).json()) as { etag: string; ips: Entry[] };
      assert.deepEqual(second.ips.map((e) => e.value), ['192.0.2.44']);
      assert.equal(second.etag, first.etag);
    } finally {
      await again.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
