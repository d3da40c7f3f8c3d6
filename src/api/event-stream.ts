/**
 * The `application/vnd.amazon.eventstream` framing InvokeWithResponseStream answers with,
 * encoded by Smithy's own codec (the one the AWS SDK decodes with), so the SDK reads our
 * PayloadChunk and InvokeComplete events as it reads Lambda's.
 */
import { EventStreamCodec } from '@smithy/core/event-streams';

const codec = new EventStreamCodec(
  (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8'),
  (text: string) => Buffer.from(text, 'utf8'),
);

function event(eventType: string, contentType: string, body: Uint8Array): Buffer {
  return Buffer.from(
    codec.encode({
      headers: {
        ':event-type': { type: 'string', value: eventType },
        ':message-type': { type: 'string', value: 'event' },
        ':content-type': { type: 'string', value: contentType },
      },
      body,
    }),
  );
}

/** One piece of the function's response. */
export function payloadChunk(payload: Buffer): Buffer {
  return event('PayloadChunk', 'application/octet-stream', payload);
}

/** The last event: how the invocation ended, and the log tail when asked for. */
export function invokeComplete(complete: { ErrorCode?: string; ErrorDetails?: string; LogResult?: string }): Buffer {
  return event('InvokeComplete', 'application/json', Buffer.from(JSON.stringify(complete), 'utf8'));
}
