/**
 * The part every front door shares between building an event and writing HTTP: runs the
 * function through the invocation plane and sorts the outcome into what a front door
 * distinguishes on the wire (a response to map, a failed function, a throttle, a
 * function that cannot be invoked at all).
 */
import { PlatformError, TooManyRequestsException } from '../errors/platform-errors.ts';
import { RuntimeErrorType } from '../errors/runtime-error-types.ts';
import type { Logger } from '../logging/logger.ts';
import type { FrontDoorInvoker } from './types.ts';

/** Lambda's synchronous request limit applies to the event: 6 MB (6,291,456 bytes). */
export const maxEventBytes = 6 * 1024 * 1024;

export type FunctionAnswer =
  /** The function returned: `payload` is its JSON answer, to be mapped to HTTP. */
  | { kind: 'response'; payload: Buffer; requestId: string }
  /** The event is over Lambda's 6 MB request limit; nothing ran. */
  | { kind: 'event-too-large'; eventBytes: number }
  /** The function's answer was over Lambda's 6 MB response limit. */
  | { kind: 'response-too-large'; message: string; requestId: string }
  /** The function threw, timed out, crashed or failed to start. */
  | { kind: 'failed'; errorType: string; requestId: string }
  /** Lambda refused the invoke: concurrency limits. */
  | { kind: 'throttled'; message: string }
  /** Lambda refused the invoke for another reason (function gone, not invocable). */
  | { kind: 'rejected'; errorName: string; message: string };

export interface EventTarget {
  functionName: string;
  qualifier?: string;
}

export async function invokeWithEvent(
  invoker: FrontDoorInvoker,
  target: EventTarget,
  event: unknown,
  requestId: string,
  logger: Logger,
): Promise<FunctionAnswer> {
  const payload = Buffer.from(JSON.stringify(event), 'utf8');
  if (payload.length > maxEventBytes) return { kind: 'event-too-large', eventBytes: payload.length };
  try {
    const result = await invoker.invoke({ functionName: target.functionName, qualifier: target.qualifier, payload, requestId });
    const { outcome } = result;
    if (outcome.kind === 'success') return { kind: 'response', payload: outcome.payload, requestId: result.requestId };
    const errorType = outcome.errorType;
    if (errorType === RuntimeErrorType.ResponseSizeTooLarge) {
      return { kind: 'response-too-large', message: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).', requestId: result.requestId };
    }
    return { kind: 'failed', errorType, requestId: result.requestId };
  } catch (err) {
    if (err instanceof TooManyRequestsException) return { kind: 'throttled', message: err.message };
    if (err instanceof PlatformError) return { kind: 'rejected', errorName: err.name, message: err.message };
    logger.error('front door invoke failed', { functionName: target.functionName, requestId, error: (err as Error)?.stack ?? String(err) });
    return { kind: 'rejected', errorName: 'ServiceException', message: 'An internal error occurred.' };
  }
}
