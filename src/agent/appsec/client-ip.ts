/**
 * The client IP of an HTTP-triggered invocation, for the WAF's `http.client_ip`, deny lists
 * and signals. Datadog's tracers look through a fixed list of IP headers and take the first
 * public address found; proxies and load balancers in front of a function append their own
 * private addresses, so "first public" is the client and not the last hop.
 *
 * One difference from the tracers: when no header holds a public address, the event's own
 * source IP wins over a private address read from a header. The source IP is written by the
 * front door (API Gateway, the function URL service, ALB), not by the client, so it is the
 * one value the client cannot forge.
 */
import { BlockList, isIP } from 'node:net';

/** Checked in this order, as Datadog's tracers do. */
export const clientIpHeaders: readonly string[] = [
  'x-forwarded-for',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'forwarded',
  'forwarded-for',
  'x-cluster-client-ip',
  'fastly-client-ip',
  'cf-connecting-ip',
  'cf-connecting-ipv6',
];

const nonPublic = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv6');
}

/** True for a valid address outside private, loopback, link-local and CGNAT ranges. */
export function isPublicIp(ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  // BlockList matches IPv4-mapped IPv6 (::ffff:10.0.0.1) against the IPv4 ranges too.
  return !nonPublic.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[::1]:80` → `::1`, `"1.2.3.4"` → `1.2.3.4`. */
function bareAddress(raw: string): string {
  let s = raw.trim();
  if (s.length > 1 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1).trim();
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    return close > 0 ? s.slice(1, close) : s;
  }
  const colon = s.indexOf(':');
  // One colon after a dotted quad is a port; several colons make an IPv6 address.
  if (colon > 0 && s.indexOf(':', colon + 1) === -1 && s.includes('.')) return s.slice(0, colon);
  return s;
}

/**
 * The last X-Forwarded-For address: the one the nearest proxy appended. For an ALB event it is
 * the address the load balancer itself saw, which (unlike the first entries) a client cannot
 * choose.
 */
export function lastForwardedFor(headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  const raw = headers['x-forwarded-for'];
  const value = typeof raw === 'string' ? raw : Array.isArray(raw) ? raw[raw.length - 1] : undefined;
  if (typeof value !== 'string') return undefined;
  const parts = value.split(',');
  const ip = bareAddress(parts[parts.length - 1]!);
  return isIP(ip) === 0 ? undefined : ip;
}

interface Candidates {
  firstPublic?: string;
  firstPrivate?: string;
}

/** The first public and first non-public addresses of one header's comma-separated list. */
function scanHeader(value: string, isForwarded: boolean, out: Candidates): void {
  for (let part of value.split(',')) {
    if (isForwarded) {
      // RFC 7239: `for=192.0.2.60;proto=http;by=203.0.113.43`
      const directive = part.split(';').find((d) => d.trim().toLowerCase().startsWith('for='));
      if (!directive) continue;
      part = directive.trim().slice(4);
    }
    const ip = bareAddress(part);
    if (isIP(ip) === 0) continue;
    if (isPublicIp(ip)) {
      out.firstPublic = ip;
      return;
    }
    out.firstPrivate ??= ip;
  }
}

/**
 * The client IP from lower-cased request headers (a value may be a list of values) and the
 * front door's source IP. Undefined when neither holds a valid address.
 */
export function clientIpOf(headers: Readonly<Record<string, string | string[] | undefined>>, sourceIp: string | undefined): string | undefined {
  const found: Candidates = {};
  for (const name of clientIpHeaders) {
    const raw = headers[name];
    if (raw === undefined) continue;
    const values = typeof raw === 'string' ? [raw] : raw;
    for (const value of values) {
      if (typeof value !== 'string') continue;
      scanHeader(value, name === 'forwarded', found);
      if (found.firstPublic) return found.firstPublic;
    }
  }
  const source = typeof sourceIp === 'string' ? bareAddress(sourceIp) : undefined;
  if (source && isIP(source) !== 0) return source;
  return found.firstPrivate;
}
