/**
 * Threat detection's deny lists: client IPs (single addresses or CIDR ranges) and user ids
 * whose requests the Nimbus agent refuses in block mode. Kept in the store, so they survive
 * restarts, and served to agents with an ETag: every agent polls about once a second, and an
 * unchanged list must cost a 304, not a store scan: the list is cached until this server
 * changes it (the server owns its store). The ETag is a hash of the content, so it survives a
 * restart and agents polling across one are not sent the same list again.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { InvalidParameterValueException } from '../errors/platform-errors.ts';
import type { Clock } from '../clock/clock.ts';
import type { ResourceStore } from '../store/types.ts';

const ipKind = 'appsec-deny-ip';
const userKind = 'appsec-deny-user';

export type DenyListKind = 'ip' | 'user';

export interface DenyListEntry {
  /** The normalized address or CIDR, or the user id. */
  value: string;
  reason?: string;
  /** ISO-8601. */
  addedAt: string;
}

export interface DenyListView {
  ips: DenyListEntry[];
  users: DenyListEntry[];
  /** A strong ETag (quoted) of the content. */
  etag: string;
}

export const maxReasonLength = 512;
export const maxUserIdLength = 256;

/**
 * `10.1.2.3`, `10.0.0.0/8`, `2001:db8::/32` → their canonical form (IPv6 compressed and
 * lower-cased, a CIDR's host bits cleared), so that one address has one key. Anything else is
 * an InvalidParameterValueException.
 */
export function normalizeIpOrCidr(input: unknown): string {
  if (typeof input !== 'string' || input.trim() === '') throw new InvalidParameterValueException('ip must be an IPv4 or IPv6 address or a CIDR range, e.g. 203.0.113.7 or 10.0.0.0/8.');
  const raw = input.trim();
  const slash = raw.indexOf('/');
  const address = slash === -1 ? raw : raw.slice(0, slash);
  // Zone ids (`fe80::1%eth0`) name an interface of one host; they mean nothing on another.
  const family = address.includes('%') ? 0 : isIP(address);
  if (family === 0) throw new InvalidParameterValueException(`${JSON.stringify(raw)} is not an IPv4 or IPv6 address or CIDR range.`);
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash !== -1) {
    const p = raw.slice(slash + 1);
    prefix = /^\d{1,3}$/.test(p) ? Number(p) : NaN;
    if (!(prefix >= 0 && prefix <= bits)) throw new InvalidParameterValueException(`${JSON.stringify(raw)}: the prefix length must be 0 to ${bits}.`);
  }
  if (family === 6) {
    // An IPv4-mapped address (`::ffff:192.0.2.1`) is an IPv4 client: keep it in that family.
    const n = v6ToBigInt(address);
    if (n >> 32n === 0xffffn && prefix >= 96) {
      const v4 = [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 255n)).join('.');
      return normalizeIpOrCidr(slash === -1 ? v4 : `${v4}/${prefix - 96}`);
    }
  }
  const canonical = family === 4 ? maskV4(address, prefix) : maskV6(address, prefix);
  return slash === -1 ? canonical : `${canonical}/${prefix}`;
}

function maskV4(address: string, prefix: number): string {
  const n = address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  const masked = prefix === 0 ? 0n : n & (((1n << BigInt(prefix)) - 1n) << BigInt(32 - prefix));
  return [24n, 16n, 8n, 0n].map((shift) => String((masked >> shift) & 255n)).join('.');
}

function v6ToBigInt(address: string): bigint {
  let text = address.toLowerCase();
  // An embedded IPv4 tail (`::ffff:192.0.2.1`) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

function maskV6(address: string, prefix: number): string {
  const n = v6ToBigInt(address);
  const masked = prefix === 0 ? 0n : n & (((1n << BigInt(prefix)) - 1n) << BigInt(128 - prefix));
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((masked >> BigInt(i * 16)) & 0xffffn).toString(16));
  // The URL parser writes the canonical compressed form (RFC 5952).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

export function normalizeUserId(input: unknown): string {
  if (typeof input !== 'string' || input === '') throw new InvalidParameterValueException('userId must be a non-empty string.');
  if (input.length > maxUserIdLength) throw new InvalidParameterValueException(`userId must be at most ${maxUserIdLength} characters.`);
  if (/[\u0000-\u001f\u007f]/.test(input)) throw new InvalidParameterValueException('userId must not contain control characters.');
  return input;
}

function checkReason(reason: unknown): string | undefined {
  if (reason === undefined || reason === null) return undefined;
  if (typeof reason !== 'string') throw new InvalidParameterValueException('reason must be a string.');
  if (reason.length > maxReasonLength) throw new InvalidParameterValueException(`reason must be at most ${maxReasonLength} characters.`);
  return reason === '' ? undefined : reason;
}

export class DenyListService {
  readonly #store: ResourceStore;
  readonly #clock: Clock;
  #cached: DenyListView | undefined;

  constructor(store: ResourceStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Both lists in key order, with their ETag. */
  async list(): Promise<DenyListView> {
    if (this.#cached) return this.#cached;
    const [ips, users] = await Promise.all([this.#all(ipKind), this.#all(userKind)]);
    const etag = `"${createHash('sha256').update(JSON.stringify({ ips, users })).digest('base64url').slice(0, 27)}"`;
    this.#cached = { ips, users, etag };
    return this.#cached;
  }

  /** Adds (or updates the reason of) an entry; `created` is false when it was already there. */
  async add(kind: DenyListKind, rawValue: unknown, rawReason?: unknown): Promise<{ entry: DenyListEntry; created: boolean }> {
    const value = kind === 'ip' ? normalizeIpOrCidr(rawValue) : normalizeUserId(rawValue);
    const reason = checkReason(rawReason);
    const storeKind = kind === 'ip' ? ipKind : userKind;
    const existing = await this.#store.getResource<DenyListEntry>(storeKind, value);
    const entry: DenyListEntry = { value, addedAt: existing?.addedAt ?? this.#clock.now().toISOString() };
    if (reason !== undefined) entry.reason = reason;
    else if (existing?.reason !== undefined) entry.reason = existing.reason;
    await this.#store.putResource(storeKind, value, entry);
    this.#cached = undefined;
    return { entry, created: existing === undefined };
  }

  /** False when the entry was not on the list. */
  async remove(kind: DenyListKind, rawValue: unknown): Promise<boolean> {
    const value = kind === 'ip' ? normalizeIpOrCidr(rawValue) : normalizeUserId(rawValue);
    const removed = await this.#store.deleteResource(kind === 'ip' ? ipKind : userKind, value);
    this.#cached = undefined;
    return removed;
  }

  async #all(kind: string): Promise<DenyListEntry[]> {
    const out: DenyListEntry[] = [];
    let marker: string | undefined;
    do {
      const page = await this.#store.listResources<DenyListEntry>(kind, { marker, maxItems: 1000 });
      for (const item of page.items) out.push(item.record);
      marker = page.nextMarker;
    } while (marker);
    return out;
  }
}
