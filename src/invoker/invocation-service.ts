/**
 * The one way to run a function synchronously, for every front door: the control API's
 * Invoke, function URLs, API Gateway and ALB emulation, async delivery. Resolves the
 * function and qualifier to what should run, gives the invocation its ids, and hands it
 * to the invoker.
 */
import { randomUUID, randomBytes } from 'node:crypto';
import type { FunctionService } from '../functions/function-service.ts';
import type { BufferedOutcome, InvokeOutcome, InvokeResult } from '../environments/types.ts';
import type { Invoker } from './invoker.ts';

export interface SyncInvocation {
  functionName: string;
  /** Version or alias; `$LATEST` when absent. */
  qualifier?: string;
  /** Event bytes (JSON). */
  payload: Buffer;
  /** Decoded client context JSON. */
  clientContext?: string;
  wantLogTail?: boolean;
  /** Request id to use (async retries keep theirs); a new one otherwise. */
  requestId?: string;
}

/** A result whose response is whole (a streamed one is collected first). */
export interface SyncInvocationResult extends Omit<InvokeResult, 'outcome'> {
  outcome: BufferedOutcome;
  /** The version that ran (`$LATEST` or a number an alias resolved to). */
  executedVersion: string;
}

/** A result that may carry a response still streaming. */
export interface StreamingInvocationResult extends InvokeResult {
  executedVersion: string;
}

/** A buffered Invoke of a streaming function gets the whole response, up to 6 MB. */
const maxBufferedBytes = 6 * 1024 * 1024;

/** Collects a streamed response into Lambda's buffered outcome. */
export async function collectStream(outcome: InvokeOutcome): Promise<BufferedOutcome> {
  if (outcome.kind !== 'stream') return outcome;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of outcome.body) {
    size += chunk.length;
    if (size <= maxBufferedBytes) chunks.push(chunk);
  }
  const end = await outcome.completion;
  if (end.errorType) return { kind: 'function-error', errorType: end.errorType, payload: Buffer.from(end.errorBody ?? JSON.stringify({ errorType: end.errorType })) };
  if (size > maxBufferedBytes) {
    const errorType = 'Function.ResponseSizeTooLarge';
    return { kind: 'function-error', errorType, payload: Buffer.from(JSON.stringify({ errorMessage: `Response payload size exceeded maximum allowed payload size (${maxBufferedBytes} bytes).`, errorType })) };
  }
  return { kind: 'success', payload: Buffer.concat(chunks, size), contentType: outcome.contentType };
}

/** An X-Ray trace header, as Lambda passes one to every invocation. */
export function newTraceId(): string {
  const epochHex = Math.floor(Date.now() / 1000).toString(16);
  const hex = randomBytes(24).toString('hex');
  return `Root=1-${epochHex}-${hex.slice(0, 24)};Parent=${hex.slice(24, 40)};Sampled=0;Lineage=1:${hex.slice(40, 48)}:0`;
}

export class InvocationService {
  readonly #functions: FunctionService;
  readonly #invoker: Invoker;

  constructor(functions: FunctionService, invoker: Invoker) {
    this.#functions = functions;
    this.#invoker = invoker;
  }

  /** Throws ResourceNotFoundException for unknown functions or qualifiers. */
  async invoke(request: SyncInvocation): Promise<SyncInvocationResult> {
    const result = await this.invokeStreaming(request);
    return { ...result, outcome: await collectStream(result.outcome) };
  }

  /** Like invoke, but a streaming function's response is handed over as it streams. */
  async invokeStreaming(request: SyncInvocation): Promise<StreamingInvocationResult> {
    const ref = { functionName: request.functionName, qualifier: request.qualifier };
    const record = await this.#functions.resolveForInvoke(ref);
    const spec = await this.#functions.environmentSpec(record);
    const result = await this.#invoker.invoke(spec, {
      requestId: request.requestId ?? randomUUID(),
      payload: request.payload.length === 0 ? Buffer.from('{}') : request.payload,
      invokedFunctionArn: this.#functions.arn(request.functionName, request.qualifier),
      traceId: newTraceId(),
      clientContext: request.clientContext,
      wantLogTail: request.wantLogTail ?? false,
    });
    return { ...result, executedVersion: record.version };
  }
}
