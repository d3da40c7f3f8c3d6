/**
 * The one way to run a function synchronously, for every front door: the control API's
 * Invoke, function URLs, API Gateway and ALB emulation, async delivery. Resolves the
 * function and qualifier to what should run, gives the invocation its ids, and hands it
 * to the invoker.
 */
import { randomUUID, randomBytes } from 'node:crypto';
import type { FunctionService } from '../functions/function-service.ts';
import type { InvokeResult } from '../environments/types.ts';
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

export interface SyncInvocationResult extends InvokeResult {
  /** The version that ran (`$LATEST` or a number an alias resolved to). */
  executedVersion: string;
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
