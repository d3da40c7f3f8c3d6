/**
 * The trace intake on :8126, where Datadog tracers (dd-trace and the others) send spans,
 * answering as the Datadog trace agent does so that tracers need no special configuration.
 * Client-computed stats (/v0.6/stats) are accepted and dropped: the agent derives what it
 * needs from the spans themselves.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Span } from '../model.ts';
import { BodyReadError, BodyTooLargeError, closeServer, listen, readBody, refuseOversized, sendJson } from '../http-body.ts';
import { decodeTracePayload, TracePayloadError } from './decode.ts';
import type { TraceApiVersion } from './decode.ts';

export interface TraceIntakeOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  onSpans(spans: Span[]): void;
  /** 50 MiB, the Datadog agent's limit for trace payloads. */
  maxBodyBytes?: number;
}

export interface TraceIntakeStats {
  /** Trace payloads accepted. */
  payloads: number;
  spans: number;
  /** Requests answered with 4xx (invalid, oversized) on the trace and stats routes. */
  rejected: number;
}

export interface TraceIntake {
  port: number;
  close(): Promise<void>;
  stats: TraceIntakeStats;
}

const TRACE_ROUTES: Record<string, TraceApiVersion> = { '/v0.4/traces': 'v0.4', '/v0.5/traces': 'v0.5' };
const STATS_ROUTE = '/v0.6/stats';
/** Tracers read this to pick endpoints and features; only what is served here is listed. */
const INFO_BODY = JSON.stringify({
  version: 'nimbus-agent',
  endpoints: ['/v0.4/traces', '/v0.5/traces', '/v0.6/stats', '/info'],
  client_drop_p0s: false,
  span_meta_structs: false,
  long_running_spans: false,
  feature_flags: [],
  config: { statsd_port: 8125, receiver_port: 8126 },
});
/** Sampling rate 1 for everything: the agent keeps every trace a tracer decided to send. */
const RATES_BODY = JSON.stringify({ rate_by_service: { 'service:,env:': 1 } });

export function startTraceIntake(options: TraceIntakeOptions): Promise<TraceIntake> {
  const maxBodyBytes = options.maxBodyBytes ?? 50 * 1024 * 1024;
  const stats: TraceIntakeStats = { payloads: 0, spans: 0, rejected: 0 };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const method = req.method ?? 'GET';
    const version = TRACE_ROUTES[path];
    if (version !== undefined && (method === 'PUT' || method === 'POST')) {
      const body = await readBody(req, { maxBytes: maxBodyBytes });
      const spans = decodeTracePayload(version, req.headers['content-type'], body);
      stats.payloads++;
      stats.spans += spans.length;
      if (spans.length > 0) options.onSpans(spans);
      return sendJson(res, 200, RATES_BODY);
    }
    if (path === STATS_ROUTE && (method === 'PUT' || method === 'POST')) {
      await readBody(req, { maxBytes: maxBodyBytes });
      return sendJson(res, 200, '{}');
    }
    if (path === '/info' && method === 'GET') return sendJson(res, 200, INFO_BODY);
    req.resume();
    sendJson(res, 404, JSON.stringify({ error: `${method} ${path} is not served by the Nimbus agent` }));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      stats.rejected++;
      const status = statusFor(error);
      const message = error instanceof Error ? error.message : String(error);
      if (res.headersSent) return res.destroy();
      // After a 413 the rest of an oversized upload is not worth keeping the connection for.
      if (status === 413) return refuseOversized(req, res, JSON.stringify({ error: message }));
      sendJson(res, status, JSON.stringify({ error: message }));
    });
  });

  return listen(server, options.host, options.port).then((port) => ({
    port,
    stats,
    close: () => closeServer(server),
  }));
}

function statusFor(error: unknown): number {
  if (error instanceof BodyTooLargeError) return 413;
  if (error instanceof BodyReadError) return error.statusCode;
  if (error instanceof TracePayloadError) return 400;
  // onSpans threw: the payload was fine, the agent was not.
  return 500;
}
