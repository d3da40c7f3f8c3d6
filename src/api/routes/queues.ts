/**
 * Nimbus's built-in queues (/nimbus/v1/queues): where SQS-ARN destinations and
 * dead-letter queues deliver, so failed events can be inspected and replayed.
 */
import { InvalidParameterValueException, ResourceNotFoundException } from '../../errors/platform-errors.ts';
import type { BuiltinQueues } from '../../invoker/async/builtin-queues.ts';
import type { AsyncDispatcher } from '../../invoker/async/async-dispatcher.ts';
import { parseFunctionRef } from '../../functions/arn.ts';
import type { Route } from '../http.ts';

export interface QueueRoutesDeps {
  queues: BuiltinQueues;
  async: Pick<AsyncDispatcher, 'enqueue'>;
  region: string;
  accountId: string;
}

/** The event to replay and the function it was for, from an invocation record or a DLQ message. */
function replayTarget(body: string, attributes: Record<string, unknown>, deps: QueueRoutesDeps, fallbackFunction: string | undefined) {
  try {
    const record = JSON.parse(body) as { requestContext?: { functionArn?: string }; requestPayload?: unknown; version?: string };
    if (record.version === '1.0' && record.requestContext?.functionArn) {
      const ref = parseFunctionRef(record.requestContext.functionArn, deps);
      return { ...ref, payload: Buffer.from(JSON.stringify(record.requestPayload ?? {})) };
    }
  } catch {
    // not an invocation record: a DLQ message holds the original event
  }
  if (!fallbackFunction) {
    throw new InvalidParameterValueException(`Message ${String(attributes.RequestID ?? '')} is the original event of a dead-letter queue: pass FunctionName to replay it.`);
  }
  return { ...parseFunctionRef(fallbackFunction, deps), payload: Buffer.from(body) };
}

export function queueRoutes(deps: QueueRoutesDeps): Route[] {
  const { queues } = deps;
  return [
    { method: 'GET', path: '/nimbus/v1/queues', operation: 'ListQueues', handler: async () => ({ status: 200, body: { Queues: await queues.names() } }) },
    {
      method: 'GET',
      path: '/nimbus/v1/queues/:QueueName/messages',
      operation: 'ListQueueMessages',
      handler: async (ctx) => {
        const page = await queues.list(ctx.params.QueueName!, { marker: ctx.query.get('Marker') ?? undefined, maxItems: 1000 });
        return { status: 200, body: { Messages: page.items, ...(page.nextMarker ? { NextMarker: page.nextMarker } : {}) } };
      },
    },
    {
      method: 'DELETE',
      path: '/nimbus/v1/queues/:QueueName/messages/:MessageId',
      operation: 'DeleteQueueMessage',
      handler: async (ctx) => {
        if (!(await queues.delete(ctx.params.QueueName!, ctx.params.MessageId!))) throw new ResourceNotFoundException(`No message ${ctx.params.MessageId} in queue ${ctx.params.QueueName}.`);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      path: '/nimbus/v1/queues/:QueueName/replay',
      operation: 'ReplayQueueMessages',
      handler: async (ctx) => {
        const body = await ctx.json(64 * 1024);
        const ids = Array.isArray(body.MessageIds) ? (body.MessageIds as unknown[]).map(String) : undefined;
        const functionName = typeof body.FunctionName === 'string' ? body.FunctionName : undefined;
        const page = await queues.list(ctx.params.QueueName!);
        const chosen = page.items.filter((m) => !ids || ids.includes(m.messageId));
        if (ids && chosen.length !== ids.length) throw new ResourceNotFoundException(`Some of the messages are not in queue ${ctx.params.QueueName}.`);
        const replayed: Array<{ MessageId: string; RequestId: string }> = [];
        for (const message of chosen) {
          const target = replayTarget(message.body, message.messageAttributes, deps, functionName);
          const requestId = await deps.async.enqueue(target.functionName, target.qualifier, target.payload);
          if (body.Delete === true) await queues.delete(message.queueName, message.messageId);
          replayed.push({ MessageId: message.messageId, RequestId: requestId });
        }
        return { status: 200, body: { Replayed: replayed } };
      },
    },
  ];
}
