/**
 * InvokeWithResponseStream (POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations):
 * the function's response as `PayloadChunk` events, sent as the runtime streams it, then
 * an `InvokeComplete` event saying how it ended. A function that does not stream sends
 * its whole response as one chunk, as on Lambda.
 */
import type { InvocationService, StreamingInvocationResult } from '../../invoker/invocation-service.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import { validationError } from '../../errors/platform-errors.ts';
import type { Reply, Route } from '../http.ts';
import { payloadChunk, invokeComplete } from '../event-stream.ts';
import { functionRef, type FunctionRoutesDeps } from './functions.ts';
import { maxSyncPayloadBytes } from './invoke.ts';

export interface InvokeStreamRoutesDeps extends FunctionRoutesDeps {
  functions: FunctionService;
  invocations: InvocationService;
}

async function* events(result: StreamingInvocationResult): AsyncIterable<Buffer> {
  const { outcome } = result;
  const logResult = result.logTail === undefined ? {} : { LogResult: Buffer.from(result.logTail, 'utf8').toString('base64') };
  if (outcome.kind === 'stream') {
    for await (const chunk of outcome.body) if (chunk.length > 0) yield payloadChunk(chunk);
    const end = await outcome.completion;
    yield invokeComplete(end.errorType ? { ErrorCode: end.errorType, ErrorDetails: end.errorBody ?? '', ...logResult } : logResult);
    return;
  }
  if (outcome.kind === 'success') {
    if (outcome.payload.length > 0) yield payloadChunk(outcome.payload);
    yield invokeComplete(logResult);
    return;
  }
  yield invokeComplete({ ErrorCode: outcome.errorType, ErrorDetails: outcome.payload.toString('utf8'), ...logResult });
}

export function invokeStreamRoutes(deps: InvokeStreamRoutesDeps): Route[] {
  const { functions, invocations } = deps;
  return [
    {
      method: 'POST',
      path: '/2021-11-15/functions/:FunctionName/response-streaming-invocations',
      operation: 'InvokeWithResponseStream',
      handler: async (ctx): Promise<Reply> => {
        const ref = functionRef(ctx, deps);
        const record = await functions.get(ref);
        const invocationType = ctx.header('x-amz-invocation-type') ?? 'RequestResponse';
        if (invocationType !== 'RequestResponse' && invocationType !== 'DryRun') {
          throw validationError(invocationType, 'invocationType', 'Member must satisfy enum value set: [RequestResponse, DryRun]');
        }
        const logType = ctx.header('x-amz-log-type') ?? 'None';
        if (logType !== 'None' && logType !== 'Tail') throw validationError(logType, 'logType', 'Member must satisfy enum value set: [None, Tail]');
        const payload = await ctx.body(maxSyncPayloadBytes);
        if (invocationType === 'DryRun') return { status: 204, headers: { 'X-Amz-Executed-Version': record.version } };
        const result = await invocations.invokeStreaming({ functionName: ref.functionName, qualifier: ref.qualifier, payload, wantLogTail: logType === 'Tail' });
        const headers: Record<string, string> = {
          'Content-Type': 'application/vnd.amazon.eventstream',
          'X-Amz-Executed-Version': result.executedVersion,
        };
        if (result.outcome.kind === 'function-error' || result.outcome.kind === 'platform-error') headers['X-Amz-Function-Error'] = 'Unhandled';
        return { status: 200, headers, stream: events(result) };
      },
    },
  ];
}
