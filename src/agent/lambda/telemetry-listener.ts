/**
 * Where the platform POSTs this agent's Telemetry API batches (a JSON array per POST).
 * A batch that cannot be parsed is acknowledged and dropped, as Datadog's extension does:
 * answering with an error would only make the platform send it again.
 */
import http from 'node:http';
import type { TelemetryEvent } from '../model.ts';

export interface TelemetryListener {
  port: number;
  /** Batches that could not be parsed. */
  readonly rejected: number;
  close(): Promise<void>;
}

/** The Telemetry API's largest batch is 1 MiB; anything much bigger is not from it. */
const maxBatchBytes = 4 * 1024 * 1024;

export function startTelemetryListener(options: { host: string; port: number; onEvents(events: TelemetryEvent[]): void; onError?(message: string): void }): Promise<TelemetryListener> {
  let rejected = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes <= maxBatchBytes) chunks.push(c);
    });
    req.on('end', () => {
      res.writeHead(200).end();
      if (bytes > maxBatchBytes) {
        rejected++;
        options.onError?.(`telemetry batch of ${bytes} bytes dropped (over ${maxBatchBytes})`);
        return;
      }
      let events: unknown;
      try {
        events = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        events = undefined;
      }
      if (!Array.isArray(events)) {
        rejected++;
        options.onError?.('telemetry batch is not a JSON array; dropped');
        return;
      }
      try {
        options.onEvents(events.filter((e): e is TelemetryEvent => !!e && typeof e === 'object' && typeof (e as TelemetryEvent).type === 'string'));
      } catch (err) {
        options.onError?.(`telemetry batch handling failed: ${(err as Error).message}`);
      }
    });
    req.on('error', () => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      const address = server.address() as { port: number };
      resolve({
        port: address.port,
        get rejected() {
          return rejected;
        },
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}
