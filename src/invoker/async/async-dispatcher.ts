/**
 * Asynchronous invocation (InvocationType Event), as Lambda runs it: events wait in a
 * durable queue (the store), a dispatcher invokes them, and the outcome follows Lambda's
 * retry policy:
 *  - a function error (or timeout, or crash) is retried up to MaximumRetryAttempts
 *    (default 2) times, about 1 minute before the second attempt and 2 before the third;
 *  - a throttle or system error puts the event back with back-off from 1 s up to 5 min,
 *    for as long as the event is younger than MaximumEventAgeInSeconds (default 6 h);
 *  - then the invocation record goes to the on-success or on-failure destination, and a
 *    failed event to the function's dead-letter queue.
 * Events in flight when the server dies are delivered again after a restart (at least once).
 */
import { randomUUID } from 'node:crypto';
import { PlatformError, TooManyRequestsException, ResourceNotFoundException } from '../../errors/platform-errors.ts';
import type { AsyncEventRecord, AsyncQueueStore } from '../../store/types.ts';
import type { Logger } from '../../logging/logger.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import type { InvocationService, SyncInvocationResult } from '../invocation-service.ts';
import { asyncDefaults, type EventInvokeConfig, type EventInvokeConfigs } from './event-invoke-configs.ts';
import type { BuiltinQueues } from './builtin-queues.ts';
import { jsonOrText, parseDestinationArn, type InvocationRecord } from './destinations.ts';

export interface AsyncDispatcherOptions {
  queue: AsyncQueueStore;
  invocations: InvocationService;
  functions: FunctionService;
  configs: EventInvokeConfigs;
  queues: BuiltinQueues;
  reservedFor: (functionName: string) => number | undefined;
  logger: Logger;
  /** Delay before each retry after a function error (Lambda: about 1 and 2 minutes). */
  retryDelaysMs: readonly number[];
  /** First back-off after a throttle; it doubles up to `throttleMaxMs` (Lambda: 1 s to 5 min). */
  throttleBaseMs: number;
  throttleMaxMs: number;
  /** Attempts running at once. */
  maxInFlight: number;
}

export interface AsyncInvocationStats {
  accepted: number;
  delivered: number;
  failed: number;
  retried: number;
  throttled: number;
}

export class AsyncDispatcher {
  readonly #o: AsyncDispatcherOptions;
  readonly stats: AsyncInvocationStats = { accepted: 0, delivered: 0, failed: 0, retried: 0, throttled: 0 };
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #pumping = false;
  #again = false;
  #state: 'created' | 'running' | 'closed' = 'created';

  constructor(options: AsyncDispatcherOptions) {
    this.#o = options;
  }

  /** Returns events a crash left in flight to the queue and starts delivering. */
  async start(): Promise<void> {
    const recovered = await this.#o.queue.recoverAsync();
    if (recovered > 0) this.#o.logger.info('async events recovered after an unclean stop', { recovered });
    this.#state = 'running';
    this.#wake();
  }

  /** Queues an Event invocation durably; resolves with its request id once stored. */
  async enqueue(functionName: string, qualifier: string | undefined, payload: Buffer): Promise<string> {
    const id = randomUUID();
    const now = Date.now();
    await this.#o.queue.enqueueAsync({ id, functionName, qualifier, payload, enqueuedAtMs: now, nextAttemptAtMs: now, attempts: 0, throttles: 0 });
    this.stats.accepted++;
    this.#wake();
    return id;
  }

  /** Stops claiming; attempts still running are left in flight and recovered on the next start. */
  close(): void {
    this.#state = 'closed';
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #wake(): void {
    if (this.#state !== 'running') return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    void this.#pump().finally(() => {
      this.#pumping = false;
      if (this.#again) {
        this.#again = false;
        this.#wake();
      }
    });
  }

  async #pump(): Promise<void> {
    while (this.#state === 'running' && this.#inFlight < this.#o.maxInFlight) {
      const claimed = await this.#o.queue.claimDueAsync(Date.now(), this.#o.maxInFlight - this.#inFlight);
      if (claimed.length === 0) break;
      for (const event of claimed) {
        this.#inFlight++;
        void this.#attempt(event)
          .catch((err: unknown) => this.#o.logger.error('async attempt failed unexpectedly', { requestId: event.id, error: (err as Error).stack }))
          .finally(() => {
            this.#inFlight--;
            this.#wake();
          });
      }
    }
    await this.#scheduleNext();
  }

  async #scheduleNext(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state !== 'running') return;
    const due = await this.#o.queue.nextDueAsync();
    if (due === undefined) return;
    this.#timer = setTimeout(() => this.#wake(), Math.max(0, due - Date.now()));
    this.#timer.unref();
  }

  async #attempt(event: AsyncEventRecord): Promise<void> {
    const { functionName } = event;
    const config = await this.#o.configs.get(functionName, event.qualifier ?? '$LATEST');
    const maxRetries = config?.maximumRetryAttempts ?? asyncDefaults.maximumRetryAttempts;
    const maxAgeMs = (config?.maximumEventAgeInSeconds ?? asyncDefaults.maximumEventAgeInSeconds) * 1000;
    if (Date.now() - event.enqueuedAtMs > maxAgeMs) return this.#giveUp(event, config, 'EventAgeExceeded', undefined);
    // Reserved concurrency 0: Lambda sends events straight to failure handling, without retries.
    if (this.#o.reservedFor(functionName) === 0) return this.#giveUp(event, config, 'RetriesExhausted', undefined);

    let result: SyncInvocationResult;
    try {
      result = await this.#o.invocations.invoke({ functionName, qualifier: event.qualifier, payload: event.payload, requestId: event.id });
    } catch (err) {
      if (this.#state === 'closed') return;
      if (err instanceof ResourceNotFoundException) {
        this.#o.logger.warn('async event dropped: its function no longer exists', { requestId: event.id, functionName });
        await this.#o.queue.completeAsync(event.id);
        return;
      }
      // Throttles and system errors go back to the queue with back-off, up to the age limit.
      if (!(err instanceof TooManyRequestsException) && !(err instanceof PlatformError)) {
        this.#o.logger.error('async invoke failed with a system error', { requestId: event.id, error: (err as Error).message });
      }
      this.stats.throttled++;
      const delay = Math.min(this.#o.throttleMaxMs, this.#o.throttleBaseMs * 2 ** event.throttles);
      // Never wait past the event's age limit: the attempt then finds it expired.
      const next = Math.min(Date.now() + delay, event.enqueuedAtMs + maxAgeMs + 1);
      await this.#o.queue.rescheduleAsync(event.id, next, event.attempts, event.throttles + 1);
      return;
    }
    // An environment stopped by a server shutdown is not the function's failure.
    if (this.#state === 'closed') return;
    const invokeCount = event.attempts + 1;
    if (result.outcome.kind === 'success') {
      this.stats.delivered++;
      if (config?.onSuccess) await this.#deliver(config.onSuccess, this.#record(event, 'Success', invokeCount, result));
      await this.#o.queue.completeAsync(event.id);
      return;
    }
    if (event.attempts < maxRetries) {
      this.stats.retried++;
      const delay = this.#o.retryDelaysMs[Math.min(event.attempts, this.#o.retryDelaysMs.length - 1)] ?? 60_000;
      await this.#o.queue.rescheduleAsync(event.id, Date.now() + delay, invokeCount, event.throttles);
      return;
    }
    await this.#giveUp({ ...event, attempts: invokeCount }, config, 'RetriesExhausted', result);
  }

  /** The event failed for good: on-failure destination, dead-letter queue, then it leaves the queue. */
  async #giveUp(event: AsyncEventRecord, config: EventInvokeConfig | undefined, condition: 'RetriesExhausted' | 'EventAgeExceeded', result: SyncInvocationResult | undefined): Promise<void> {
    this.stats.failed++;
    const record = this.#record(event, condition, event.attempts, result);
    if (config?.onFailure) await this.#deliver(config.onFailure, record);
    await this.#deadLetter(event, result);
    await this.#o.queue.completeAsync(event.id);
  }

  #record(event: AsyncEventRecord, condition: InvocationRecord['requestContext']['condition'], invokeCount: number, result: SyncInvocationResult | undefined): InvocationRecord {
    const executedVersion = result?.executedVersion ?? (event.qualifier && /^[0-9]+$/.test(event.qualifier) ? event.qualifier : '$LATEST');
    const responseContext: InvocationRecord['responseContext'] = { statusCode: result ? 200 : 429, executedVersion };
    if (result && result.outcome.kind !== 'success') responseContext.functionError = 'Unhandled';
    return {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId: event.id,
        functionArn: this.#o.functions.arn(event.functionName, event.qualifier ?? '$LATEST'),
        condition,
        approximateInvokeCount: invokeCount,
      },
      requestPayload: jsonOrText(event.payload),
      responseContext,
      responsePayload: result ? jsonOrText(result.outcome.payload) : null,
    };
  }

  async #deliver(destinationArn: string, record: InvocationRecord): Promise<void> {
    try {
      const destination = parseDestinationArn(destinationArn);
      const body = JSON.stringify(record);
      if (destination.type === 'queue') await this.#o.queues.send(destination.queueName, body);
      else await this.enqueue(destination.functionName, destination.qualifier, Buffer.from(body));
    } catch (err) {
      this.#o.logger.error('could not deliver an invocation record to its destination', { destination: destinationArn, error: (err as Error).message });
    }
  }

  /** Lambda's DLQ message: the original event, with RequestID, ErrorCode and ErrorMessage attributes. */
  async #deadLetter(event: AsyncEventRecord, result: SyncInvocationResult | undefined): Promise<void> {
    let target: string | undefined;
    try {
      target = (await this.#o.functions.get({ functionName: event.functionName })).deadLetterTargetArn;
    } catch {
      return;
    }
    if (!target) return;
    const destination = parseDestinationArn(target);
    if (destination.type !== 'queue') return;
    const message = result ? result.outcome.payload.toString('utf8') : 'Event age exceeded or throttled';
    await this.#o.queues.send(destination.queueName, event.payload.toString('utf8'), {
      RequestID: { DataType: 'String', StringValue: event.id },
      ErrorCode: { DataType: 'Number', StringValue: result ? '200' : '429' },
      ErrorMessage: { DataType: 'String', StringValue: message.slice(0, 1024) },
    });
  }
}
