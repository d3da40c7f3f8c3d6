/**
 * The Nimbus server's deny lists (IPs and CIDRs, user ids) as the agent sees them, so that
 * `nimbus security block-ip` takes effect in running functions without a redeploy. The agent
 * polls `GET /nimbus/v1/security/deny-list` with If-None-Match, so an unchanged list costs a
 * 304 and no parsing. When the server cannot be reached the last list stays in force: a
 * blocked address must not get through because the control plane is restarting.
 */
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';

/** What the interceptor asks. */
export interface DenyList {
  isIpDenied(ip: string): boolean;
  isUserDenied(userId: string): boolean;
}

/** The values of the server's lists: addresses or CIDRs, and user ids. */
export interface DenyListSnapshot {
  ips: string[];
  users: string[];
}

/** A snapshot ready for lookups: a BlockList for addresses and ranges, a Set for users. */
export class DenyListMatcher implements DenyList {
  readonly snapshot: DenyListSnapshot;
  readonly #ips = new BlockList();
  readonly #users: Set<string>;
  readonly #empty: boolean;

  constructor(snapshot: DenyListSnapshot) {
    this.snapshot = snapshot;
    this.#users = new Set(snapshot.users);
    let ipCount = 0;
    for (const entry of snapshot.ips) {
      const slash = entry.indexOf('/');
      const address = slash === -1 ? entry : entry.slice(0, slash);
      const family = isIP(address);
      if (family === 0) continue;
      const type = family === 6 ? 'ipv6' : 'ipv4';
      try {
        if (slash === -1) this.#ips.addAddress(address, type);
        else this.#ips.addSubnet(address, Number(entry.slice(slash + 1)), type);
        ipCount++;
      } catch {
        // The server validates entries; one it let through that BlockList refuses is skipped.
      }
    }
    this.#empty = ipCount === 0;
  }

  isIpDenied(ip: string): boolean {
    if (this.#empty) return false;
    const family = isIP(ip);
    return family !== 0 && this.#ips.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  }

  isUserDenied(userId: string): boolean {
    return this.#users.has(userId);
  }
}

/** Denies no one: the list before the first poll, and when no server is configured. */
export const deniedNothing = new DenyListMatcher({ ips: [], users: [] });

export const denyListPath = '/nimbus/v1/security/deny-list';

export class DenyListResponseError extends Error {
  override readonly name = 'DenyListResponseError';
}

export interface DenyListClientOptions {
  /** The Nimbus server (config.nimbusEndpoint); only its origin is used. */
  endpoint: string;
  /** Between polls (NIMBUS_APPSEC_DENYLIST_POLL_MS, 1,000). */
  pollMs?: number;
  /** For one poll; the default is the poll interval, at most 5 s. */
  requestTimeoutMs?: number;
  /** Told once when polls start failing, not on every failed poll. */
  onError?: (err: Error) => void;
  onUpdate?: (snapshot: DenyListSnapshot) => void;
}

function valuesOf(list: unknown, name: string): string[] {
  if (!Array.isArray(list)) throw new DenyListResponseError(`the deny list's "${name}" is not an array`);
  const out: string[] = [];
  for (const entry of list) {
    const value = typeof entry === 'string' ? entry : (entry as { value?: unknown } | null)?.value;
    if (typeof value === 'string') out.push(value);
  }
  return out;
}

/** `{ips: [{value, reason, addedAt}], users: [...]}` (plain strings accepted too). */
export function parseDenyList(text: string): DenyListSnapshot {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new DenyListResponseError(`the deny list is not JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null) throw new DenyListResponseError('the deny list is not a JSON object');
  const b = body as { ips?: unknown; users?: unknown };
  return { ips: valuesOf(b.ips ?? [], 'ips'), users: valuesOf(b.users ?? [], 'users') };
}

export class DenyListClient implements DenyList {
  readonly #url: URL;
  readonly #pollMs: number;
  readonly #timeoutMs: number;
  readonly #onError: (err: Error) => void;
  readonly #onUpdate: (snapshot: DenyListSnapshot) => void;
  readonly #agent: http.Agent;
  #matcher: DenyListMatcher = deniedNothing;
  #etag: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<boolean> | undefined;
  #request: http.ClientRequest | undefined;
  #failing = false;
  #running = false;

  constructor(options: DenyListClientOptions) {
    this.#url = new URL(denyListPath, options.endpoint);
    this.#pollMs = Math.max(10, options.pollMs ?? 1000);
    this.#timeoutMs = options.requestTimeoutMs ?? Math.min(this.#pollMs, 5000);
    this.#onError = options.onError ?? (() => {});
    this.#onUpdate = options.onUpdate ?? (() => {});
    const Agent = this.#url.protocol === 'https:' ? https.Agent : http.Agent;
    // Idle keep-alive sockets are unref'd by Node's agent: polling never holds the process open.
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1 });
  }

  get snapshot(): DenyListSnapshot {
    return this.#matcher.snapshot;
  }

  isIpDenied(ip: string): boolean {
    return this.#matcher.isIpDenied(ip);
  }

  isUserDenied(userId: string): boolean {
    return this.#matcher.isUserDenied(userId);
  }

  /** Polls now and then every pollMs until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#tick();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#request?.destroy();
    this.#agent.destroy();
  }

  /** One poll; true when the list changed. Never rejects: failures go to onError. */
  refresh(): Promise<boolean> {
    this.#inFlight ??= this.#poll().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #tick(): Promise<void> {
    await this.refresh();
    if (!this.#running) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#pollMs);
    this.#timer.unref();
  }

  async #poll(): Promise<boolean> {
    try {
      const { status, etag, body } = await this.#get();
      if (status === 304) {
        this.#recovered();
        return false;
      }
      if (status !== 200) throw new DenyListResponseError(`GET ${this.#url.href} answered ${status}`);
      const snapshot = parseDenyList(body);
      this.#matcher = new DenyListMatcher(snapshot);
      this.#etag = etag;
      this.#recovered();
      this.#onUpdate(snapshot);
      return true;
    } catch (err) {
      if (!this.#failing) {
        this.#failing = true;
        const e = err as Error;
        this.#onError(new DenyListResponseError(`cannot refresh the deny list from ${this.#url.href} (keeping the last one): ${e.message}`, { cause: e }));
      }
      return false;
    }
  }

  #recovered(): void {
    this.#failing = false;
  }

  #get(): Promise<{ status: number; etag: string | undefined; body: string }> {
    const client = this.#url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.#etag) headers['if-none-match'] = this.#etag;
      const req = client.get(this.#url, { agent: this.#agent, headers, timeout: this.#timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const etag = res.headers.etag;
          resolve({ status: res.statusCode ?? 0, etag: typeof etag === 'string' ? etag : undefined, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      this.#request = req;
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.on('close', () => {
        if (this.#request === req) this.#request = undefined;
      });
    });
  }
}
