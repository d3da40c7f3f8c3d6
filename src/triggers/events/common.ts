/**
 * Pieces every HTTP event shares: the headers a front door adds on its way in
 * (X-Forwarded-*, X-Amzn-Trace-Id, as API Gateway, function URLs and ALB add them), and
 * the request ids each front door mints.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpRequest } from '../types.ts';

/** `Root=1-5bdb40ca-556d8b0c50dc66f0511bf520`, as AWS front doors add to requests. */
export function traceHeader(atMs: number): string {
  return `Root=1-${Math.floor(atMs / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
}

/** RFC 9110 §7.6.1: connection-specific fields end at the front door. */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'trailer']);

/**
 * The request's headers plus those the front door adds. Hop-by-hop fields are not
 * forwarded; an existing X-Forwarded-For is extended with the peer's address.
 */
export function forwardedHeaders(request: IncomingHttpRequest, localPort: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let forwardedFor: string | undefined;
  let trace: string | undefined;
  for (const [k, v] of request.headers) {
    const lower = k.toLowerCase();
    if (hopByHop.has(lower) || lower === 'x-forwarded-proto' || lower === 'x-forwarded-port') continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? v : `${forwardedFor}, ${v}`;
      continue;
    }
    if (lower === 'x-amzn-trace-id') trace = v;
    else out.push([k, v]);
  }
  out.push(['X-Forwarded-For', forwardedFor === undefined ? request.sourceIp : `${forwardedFor}, ${request.sourceIp}`]);
  out.push(['X-Forwarded-Proto', 'http']);
  out.push(['X-Forwarded-Port', String(localPort)]);
  out.push(['X-Amzn-Trace-Id', trace ?? traceHeader(request.receivedAtMs)]);
  return out;
}

/** API Gateway's own request ids look like `JKJaXmPLvHcESHA=` (base64 of 11 bytes). */
export function apiGatewayRequestId(): string {
  return randomBytes(11).toString('base64');
}
