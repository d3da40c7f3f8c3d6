export * from './batching-log-sink.ts';
