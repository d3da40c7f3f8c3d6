#!/usr/bin/env node
// bench/extensions: the least an external extension can do. Registers for INVOKE and
// SHUTDOWN and asks for the next event as soon as one comes, speaking HTTP/1.1 itself over
// one keep-alive socket (as lean as an extension written in Go or Rust, so that what is
// measured is what Nimbus adds, not what Node's HTTP client costs).
import net from 'node:net';
import path from 'node:path';

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const name = path.basename(process.argv[1]);
const socket = net.connect({ host, port: Number(port), noDelay: true });
socket.setEncoding('latin1');

let buffer = '';
let waiting;
/** Reads one HTTP response: its head and a Content-Length body. */
socket.on('data', (chunk) => {
  buffer += chunk;
  const headEnd = buffer.indexOf('\r\n\r\n');
  if (headEnd < 0) return;
  const head = buffer.slice(0, headEnd);
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  if (buffer.length < headEnd + 4 + length) return;
  const body = buffer.slice(headEnd + 4, headEnd + 4 + length);
  buffer = buffer.slice(headEnd + 4 + length);
  const resolve = waiting;
  waiting = undefined;
  resolve({ head, body });
});
socket.on('error', () => process.exit(1));

function send(request) {
  return new Promise((resolve) => {
    waiting = resolve;
    socket.write(request);
  });
}

const body = '{"events":["INVOKE","SHUTDOWN"]}';
const reg = await send(
  `POST /2020-01-01/extension/register HTTP/1.1\r\nHost: ${host}\r\nLambda-Extension-Name: ${name}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
);
const id = /\r\nlambda-extension-identifier: *([0-9a-f-]+)/i.exec(reg.head)[1];
const next = `GET /2020-01-01/extension/event/next HTTP/1.1\r\nHost: ${host}\r\nLambda-Extension-Identifier: ${id}\r\n\r\n`;
for (;;) {
  const event = await send(next);
  if (event.body.includes('"SHUTDOWN"')) process.exit(0);
}
