/**
 * AWS_IAM function URLs: checks a request's Signature Version 4 against the access keys
 * configured on the server (`accessKeys` in nimbus.json), as Lambda checks it against IAM.
 *
 * Why @smithy/signature-v4: it is the signer the AWS SDK for JavaScript itself uses,
 * maintained by AWS. Verifying is signing the canonical request again with the caller's
 * secret and comparing signatures: the request is given to the signer exactly as it came
 * off the wire (the encoded path, which the signer escapes once more as SigV4 requires for
 * services other than S3; only the headers the caller signed; the body, or the caller's
 * X-Amz-Content-Sha256), so what it computes is what a correct client computed.
 *
 * Accepted: the Authorization header form (`AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...`) with X-Amz-Date, for service `lambda` in the
 * server's region, within 5 minutes of the server's clock (SigV4's allowed skew).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { IncomingHttpRequest } from '../types.ts';
import { queryPairs } from '../http/query.ts';

type SourceData = string | ArrayBuffer | ArrayBufferView;

/** SHA-256 and HMAC-SHA-256 from node:crypto, in the shape the signer takes (a Checksum). */
class NodeSha256 {
  readonly #secret: SourceData | undefined;
  #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#hash = this.#fresh();
  }
  #fresh() {
    const toBuffer = (d: SourceData): Buffer =>
      typeof d === 'string' ? Buffer.from(d, 'utf8') : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.#secret));
  }
  update(data: Uint8Array | string): void {
    this.#hash.update(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
  reset(): void {
    this.#hash = this.#fresh();
  }
}

export const maxClockSkewMs = 5 * 60 * 1000;

export interface VerifiedCaller {
  accessKeyId: string;
}

export type Verification = { ok: true; caller: VerifiedCaller } | { ok: false; reason: string };

const authPattern = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([a-z0-9\-;.]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

export interface SigV4VerifierOptions {
  accessKeys: Readonly<Record<string, string>>;
  region: string;
  now?: () => number;
}

export class SigV4Verifier {
  readonly #o: SigV4VerifierOptions;

  constructor(options: SigV4VerifierOptions) {
    this.#o = options;
  }

  async verify(request: IncomingHttpRequest): Promise<Verification> {
    const all = new Map<string, string>();
    for (const [k, v] of request.headers) {
      const lower = k.toLowerCase();
      // Repeated fields are signed as their values joined with commas.
      all.set(lower, all.has(lower) ? `${all.get(lower)},${v}` : v);
    }
    const authorization = all.get('authorization');
    if (authorization === undefined) return { ok: false, reason: 'the request is not signed' };
    const m = authPattern.exec(authorization);
    if (!m) return { ok: false, reason: 'the Authorization header is not AWS4-HMAC-SHA256' };
    const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = m as unknown as string[];
    const secret = this.#o.accessKeys[accessKeyId!];
    if (secret === undefined) return { ok: false, reason: `access key ${accessKeyId} is not configured on this server` };
    if (service !== 'lambda' || region !== this.#o.region) return { ok: false, reason: `credential scope ${region}/${service} is not ${this.#o.region}/lambda` };
    const amzDate = all.get('x-amz-date');
    const signedAt = amzDate === undefined ? undefined : parseAmzDate(amzDate);
    if (!signedAt || amzDate!.slice(0, 8) !== scopeDate) return { ok: false, reason: 'X-Amz-Date is missing or does not match the credential scope' };
    const now = this.#o.now?.() ?? Date.now();
    if (Math.abs(now - signedAt.getTime()) > maxClockSkewMs) return { ok: false, reason: 'the signature has expired (more than 5 minutes of clock skew)' };
    const signed = signedHeaderList!.split(';');
    if (!signed.includes('host')) return { ok: false, reason: 'the Host header is not signed' };
    const headers: Record<string, string> = {};
    for (const name of signed) {
      const value = all.get(name);
      if (value === undefined) return { ok: false, reason: `signed header ${name} is missing` };
      headers[name] = value;
    }
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of queryPairs(request.rawQuery)) {
      const existing = query[k];
      query[k] = existing === undefined ? v : Array.isArray(existing) ? [...existing, v] : [existing, v];
    }
    const signer = new SignatureV4({
      credentials: { accessKeyId: accessKeyId!, secretAccessKey: secret },
      region: region!,
      service: 'lambda',
      sha256: NodeSha256,
      // The caller decided whether X-Amz-Content-Sha256 is part of the request.
      applyChecksum: false,
    });
    const host = headers.host!;
    const signedRequest = await signer.sign(
      { method: request.method, protocol: 'http:', hostname: host, path: request.rawPath, query, headers, body: request.body },
      { signingDate: signedAt, signableHeaders: new Set(signed), signingRegion: region, signingService: 'lambda' },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(String(signedRequest.headers.authorization ?? ''))?.[1] ?? '';
    if (expected.length !== 64 || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature!))) {
      return { ok: false, reason: 'the signature does not match' };
    }
    return { ok: true, caller: { accessKeyId: accessKeyId! } };
  }
}
