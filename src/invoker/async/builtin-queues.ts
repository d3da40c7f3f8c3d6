/**
 * Nimbus's built-in queues: the local stand-in for SQS queues used as async destinations
 * and dead-letter queues. Messages are kept in the ResourceStore under
 * `queue-message/<queue>/<zero-padded send time>-<id>`, so they list in order.
 */
import { randomUUID } from 'node:crypto';
import type { ResourceStore, ListPage } from '../../store/types.ts';
import type { Clock } from '../../clock/clock.ts';

const KIND = 'queue-message';

export interface QueueMessage {
  messageId: string;
  queueName: string;
  /** The message body: an invocation record (JSON text) or, for a DLQ, the original event. */
  body: string;
  /** SQS-style message attributes (a DLQ's RequestID, ErrorCode, ErrorMessage). */
  messageAttributes: Record<string, { DataType: 'String' | 'Number'; StringValue: string }>;
  sentAtMs: number;
}

export class BuiltinQueues {
  readonly #store: ResourceStore;
  readonly #clock: Clock;

  constructor(store: ResourceStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  async send(queueName: string, body: string, messageAttributes: QueueMessage['messageAttributes'] = {}): Promise<QueueMessage> {
    const sentAtMs = this.#clock.now().getTime();
    const message: QueueMessage = { messageId: randomUUID(), queueName, body, messageAttributes, sentAtMs };
    await this.#store.putResource(KIND, `${queueName}/${String(sentAtMs).padStart(15, '0')}-${message.messageId}`, message);
    return message;
  }

  async list(queueName: string, options: { marker?: string; maxItems?: number } = {}): Promise<ListPage<QueueMessage>> {
    const page = await this.#store.listResources<QueueMessage>(KIND, { prefix: `${queueName}/`, ...options });
    return { items: page.items.map((i) => i.record), nextMarker: page.nextMarker };
  }

  /** Deletes one message; false when it was not there. */
  async delete(queueName: string, messageId: string): Promise<boolean> {
    const all = await this.#store.listResources<QueueMessage>(KIND, { prefix: `${queueName}/` });
    const found = all.items.find((i) => i.record.messageId === messageId);
    return found ? this.#store.deleteResource(KIND, found.key) : false;
  }

  /** Names of queues holding messages. */
  async names(): Promise<string[]> {
    const all = await this.#store.listResources<QueueMessage>(KIND);
    return [...new Set(all.items.map((i) => i.record.queueName))];
  }
}
