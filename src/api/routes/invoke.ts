/**
 * Invoke (POST /2015-03-31/functions/{FunctionName}/invocations): RequestResponse and
 * DryRun. The status never reflects a function error: a failed function answers 200
 * with `X-Amz-Function-Error: Unhandled` and the error object as payload.
 */
import { InvalidParameterValueException, InvalidRequestContentException, validationError } from '../../errors/platform-errors.ts';
import type { FunctionService } from '../../functions/function-service.ts';
import type { InvocationService } from '../../invoker/invocation-service.ts';
import type { AsyncDispatcher } from '../../invoker/async/async-dispatcher.ts';
import type { Reply, Route } from '../http.ts';
import { functionRef, type FunctionRoutesDeps } from './functions.ts';

/** Lambda's synchronous request limit: 6 MB (6,291,456 bytes). */
export const maxSyncPayloadBytes = 6 * 1024 * 1024;
/** Lambda's asynchronous request limit: 1 MB (the API reference's current value; 256 KB before 2025). */
export const maxAsyncPayloadBytes = 1024 * 1024;

/** Lambda refuses an event that is not JSON. */
function checkJson(payload: Buffer): void {
  if (payload.length === 0) return;
  try {
    JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new InvalidRequestContentException(`Could not parse request body into json: Could not parse payload into json: ${(err as Error).message}`);
  }
}
/** The decoded client context may be at most 3,583 bytes. */
const maxClientContextBytes = 3583;

export interface InvokeRoutesDeps extends FunctionRoutesDeps {
  functions: FunctionService;
  invocations: InvocationService;
  async: Pick<AsyncDispatcher, 'enqueue'>;
}

function decodeClientContext(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const decoded = Buffer.from(raw, 'base64');
  if (decoded.length > maxClientContextBytes) {
    throw new InvalidParameterValueException(`Client context must be at most ${maxClientContextBytes} bytes once decoded.`);
  }
  const text = decoded.toString('utf8');
  try {
    JSON.parse(text);
  } catch {
    throw new InvalidParameterValueException('Client context must be a base64-encoded JSON object.');
  }
  return text;
}

export function invokeRoutes(deps: InvokeRoutesDeps): Route[] {
  const { functions, invocations } = deps;
  return [
    {
      method: 'POST',
      path: '/2015-03-31/functions/:FunctionName/invocations',
      operation: 'Invoke',
      handler: async (ctx): Promise<Reply> => {
        const ref = functionRef(ctx, deps);
        const record = await functions.get(ref);
        const invocationType = ctx.header('x-amz-invocation-type') ?? 'RequestResponse';
        if (invocationType !== 'RequestResponse' && invocationType !== 'DryRun' && invocationType !== 'Event') {
          throw validationError(invocationType, 'invocationType', 'Member must satisfy enum value set: [Event, RequestResponse, DryRun]');
        }
        const logType = ctx.header('x-amz-log-type') ?? 'None';
        if (logType !== 'None' && logType !== 'Tail') throw validationError(logType, 'logType', 'Member must satisfy enum value set: [None, Tail]');
        const payload = await ctx.body(invocationType === 'Event' ? maxAsyncPayloadBytes : maxSyncPayloadBytes);
        checkJson(payload);
        if (invocationType === 'Event') {
          const requestId = await deps.async.enqueue(ref.functionName, ref.qualifier, payload);
          return { status: 202, headers: { 'x-amzn-RequestId': requestId } };
        }
        const clientContext = decodeClientContext(ctx.header('x-amz-client-context'));
        if (invocationType === 'DryRun') return { status: 204, headers: { 'X-Amz-Executed-Version': record.version } };

        const result = await invocations.invoke({
          functionName: ref.functionName,
          qualifier: ref.qualifier,
          payload,
          clientContext,
          wantLogTail: logType === 'Tail',
        });
        const headers: Record<string, string> = {
          'X-Amz-Executed-Version': result.executedVersion,
          'Content-Type': 'application/json',
        };
        const { outcome } = result;
        if (outcome.kind !== 'success') headers['X-Amz-Function-Error'] = 'Unhandled';
        else if (outcome.contentType) headers['Content-Type'] = outcome.contentType;
        if (result.logTail !== undefined) headers['X-Amz-Log-Result'] = Buffer.from(result.logTail, 'utf8').toString('base64');
        return { status: 200, headers, body: outcome.payload };
      },
    },
    {
      // Deprecated, still answered: the same as an Event invoke.
      method: 'POST',
      path: '/2014-11-13/functions/:FunctionName/invoke-async',
      operation: 'InvokeAsync',
      handler: async (ctx) => {
        const ref = functionRef(ctx, deps);
        await functions.get(ref);
        const payload = await ctx.body(256 * 1024);
        checkJson(payload);
        const requestId = await deps.async.enqueue(ref.functionName, ref.qualifier, payload);
        return { status: 202, headers: { 'x-amzn-RequestId': requestId }, body: { Status: 202 } };
      },
    },
  ];
}
