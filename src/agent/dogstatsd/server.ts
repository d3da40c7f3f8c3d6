/**
 * The DogStatsD UDP listener (port 8125 by default). Each datagram is parsed and aggregated at
 * once: parsing is cheap and keeping raw datagrams queued would only cost memory.
 */
import { createSocket } from 'node:dgram';
import type { DogStatsDAggregator } from './aggregator.ts';
import { parseDogStatsD } from './parser.ts';

export interface DogStatsDServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  aggregator: DogStatsDAggregator;
  /**
   * Told about malformed lines and socket errors; the listener keeps running either way.
   * Malformed lines are reported at most once per `errorReportIntervalMs` (the others are
   * summed into the next report), so a client sending garbage cannot flood the agent's log.
   */
  onError?: (message: string) => void;
  /** 10 s. */
  errorReportIntervalMs?: number;
  /** The clock for that interval (tests). */
  now?: () => number;
}

export interface DogStatsDServer {
  port: number;
  close(): Promise<void>;
}

export function startDogStatsD(options: DogStatsDServerOptions): Promise<DogStatsDServer> {
  const { aggregator, onError } = options;
  const reportInterval = options.errorReportIntervalMs ?? 10_000;
  const clock = options.now ?? Date.now;
  let lastReport = -Infinity;
  let unreported = 0;
  const reportParseErrors = (errors: string[]): void => {
    const now = clock();
    if (now - lastReport < reportInterval) {
      unreported += errors.length;
      return;
    }
    lastReport = now;
    const others = unreported + errors.length - 1;
    unreported = 0;
    onError!(`dogstatsd: ${errors[0]}${others > 0 ? ` (and ${others} more malformed lines since the last report)` : ''}`);
  };
  // Node hands over whole datagrams whatever their size, so packets above Datadog's 8 KiB
  // client buffer default (clients configured with a bigger buffer) are parsed too.
  const socket = createSocket({ type: 'udp4' });

  socket.on('message', (packet) => {
    const { samples, errors } = parseDogStatsD(packet);
    if (samples.length > 0) aggregator.add(samples);
    if (errors.length > 0) {
      aggregator.recordParseErrors(errors.length);
      if (onError) reportParseErrors(errors);
    }
  });

  return new Promise((resolve, reject) => {
    const onStartError = (error: Error): void => reject(error);
    socket.once('error', onStartError);
    socket.bind(options.port, options.host, () => {
      socket.off('error', onStartError);
      // After start, socket errors (e.g. ICMP reports) are reported, never fatal.
      socket.on('error', (error) => onError?.(`dogstatsd socket: ${error.message}`));
      let closing: Promise<void> | undefined;
      resolve({
        port: socket.address().port,
        // Idempotent: a second close() of a dgram socket throws.
        close: () => (closing ??= new Promise<void>((done) => socket.close(() => done()))),
      });
    });
  });
}
