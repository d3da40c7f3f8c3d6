/**
 * OTLP/HTTP receiver (port 4318): OpenTelemetry SDKs in the function export traces, metrics and
 * logs here. Only the JSON encoding is accepted: it needs no generated protobuf code in the
 * agent bundle, and every OpenTelemetry SDK can be switched to it with
 * OTEL_EXPORTER_OTLP_PROTOCOL=http/json.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogRecord, MetricPoint, Span } from '../model.ts';
import { BodyReadError, BodyTooLargeError, closeServer, listen, readBody, refuseOversized, sendJson } from '../http-body.ts';
import { CumulativeToDelta, decodeOtlpLogs, decodeOtlpMetrics, decodeOtlpTraces, OtlpPayloadError } from './decode.ts';

export interface OtlpReceiverOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  onSpans(spans: Span[]): void;
  onMetrics(points: MetricPoint[]): void;
  onLogs(records: LogRecord[]): void;
  /** 4 MiB, the OpenTelemetry Collector's default request limit, applied after gzip decoding too. */
  maxBodyBytes?: number;
}

export interface OtlpReceiver {
  port: number;
  close(): Promise<void>;
}

class UnsupportedMediaTypeError extends Error {
  override readonly name = 'UnsupportedMediaTypeError';
}

const PROTOBUF_MESSAGE =
  'this receiver accepts only OTLP/HTTP JSON (Content-Type: application/json); set OTEL_EXPORTER_OTLP_PROTOCOL=http/json';

export function startOtlpReceiver(options: OtlpReceiverOptions): Promise<OtlpReceiver> {
  const maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const cumulative = new CumulativeToDelta();
  const routes: Record<string, (json: unknown) => void> = {
    '/v1/traces': (json) => {
      const spans = decodeOtlpTraces(json);
      if (spans.length > 0) options.onSpans(spans);
    },
    '/v1/metrics': (json) => {
      const points = decodeOtlpMetrics(json, cumulative);
      if (points.length > 0) options.onMetrics(points);
    },
    '/v1/logs': (json) => {
      const records = decodeOtlpLogs(json);
      if (records.length > 0) options.onLogs(records);
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const route = routes[path];
    if (!route || req.method !== 'POST') {
      req.resume();
      return sendJson(res, 404, JSON.stringify({ message: `${req.method} ${path} is not an OTLP/HTTP endpoint (POST /v1/traces, /v1/metrics, /v1/logs)` }));
    }
    const contentType = (req.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
    if (contentType !== 'application/json') {
      req.resume();
      throw new UnsupportedMediaTypeError(contentType === 'application/x-protobuf' ? PROTOBUF_MESSAGE : `Content-Type ${contentType || '(none)'} is not supported; ${PROTOBUF_MESSAGE}`);
    }
    const body = await readBody(req, { maxBytes: maxBodyBytes, decodeContentEncoding: true });
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new OtlpPayloadError(`invalid JSON: ${(error as Error).message}`);
    }
    route(json);
    sendJson(res, 200, '{}');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      const status = statusFor(error);
      // OTLP/HTTP carries errors as a google.rpc.Status; `message` is its field that SDKs log.
      const body = JSON.stringify({ message: error instanceof Error ? error.message : String(error) });
      if (status === 413) return refuseOversized(req, res, body);
      sendJson(res, status, body);
    });
  });

  return listen(server, options.host, options.port).then((port) => ({ port, close: () => closeServer(server) }));
}

function statusFor(error: unknown): number {
  if (error instanceof UnsupportedMediaTypeError) return 415;
  if (error instanceof BodyTooLargeError) return 413;
  if (error instanceof BodyReadError) return error.statusCode;
  if (error instanceof OtlpPayloadError) return 400;
  return 500;
}
