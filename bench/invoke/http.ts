/**
 * One plain HTTP POST, for probes and cold-start invokes (the load itself goes through
 * load-worker.ts). node:http rather than fetch: fetch's first call loads undici, which
 * would land inside a timed cold start.
 */
import { request } from 'node:http';
import { isDeepStrictEqual } from 'node:util';

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function post(url: string, body: string, headers: Record<string, string> = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`POST ${url}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The event every contender is sent, and what the fixture handler must answer. */
export const PAYLOAD = JSON.stringify({ bench: 'nimbus-invoke', n: 42 });

/** Checks one invoke end to end before any load: the right answer, not just a 200. */
export async function probe(url: string): Promise<void> {
  const reply = await post(url, PAYLOAD);
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body);
  } catch {
    parsed = undefined;
  }
  const expected = { ok: true, echo: JSON.parse(PAYLOAD) };
  if (reply.status !== 200 || !isDeepStrictEqual(parsed, expected)) {
    throw new Error(`probe of ${url}: status ${reply.status}, body ${reply.body.slice(0, 300)}`);
  }
}
