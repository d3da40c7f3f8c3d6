#!/usr/bin/env node
// bench/extensions: a Telemetry API subscriber as observability extensions are written.
// Subscribes to platform and function events with the buffering of AWS's own examples
// (1,000 items, 256 KB, 100 ms), receives the batches on a local HTTP listener, and
// registers for SHUTDOWN only, so that what it costs is the telemetry, not INVOKE events.
import http from 'node:http';
import path from 'node:path';

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const name = path.basename(process.argv[1]);

function call(method, p, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: p, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let received = 0;
const listener = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    received += JSON.parse(Buffer.concat(chunks).toString()).length;
    res.end();
  });
});
await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));

const reg = await call('POST', '/2020-01-01/extension/register', { 'Lambda-Extension-Name': name }, '{"events":["SHUTDOWN"]}');
const id = reg.headers['lambda-extension-identifier'];
const subscription = {
  schemaVersion: '2022-12-13',
  types: ['platform', 'function'],
  buffering: { maxItems: 1000, maxBytes: 262144, timeoutMs: 100 },
  destination: { protocol: 'HTTP', URI: `http://sandbox.localdomain:${listener.address().port}/telemetry` },
};
const sub = await call('PUT', '/2022-07-01/telemetry', { 'Lambda-Extension-Identifier': id, 'Content-Type': 'application/json' }, JSON.stringify(subscription));
if (sub.status !== 200) {
  console.error(`subscription refused: ${sub.status} ${sub.body}`);
  process.exit(1);
}
const next = await call('GET', '/2020-01-01/extension/event/next', { 'Lambda-Extension-Identifier': id });
console.log(`[${name}] ${JSON.parse(next.body).eventType}: received ${received} events`);
process.exit(0);
