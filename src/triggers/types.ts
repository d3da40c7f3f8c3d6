/**
 * Contracts of the HTTP front doors (function URLs, API Gateway REST and HTTP APIs, ALB
 * targets): the request as a front door reads it off the wire, the response it writes,
 * and the one thing it needs from the invocation plane. Front doors translate HTTP into
 * an event, run the function through `FrontDoorInvoker`, and translate the function's
 * answer back; they never start environments themselves.
 */
import type { SyncInvocation, SyncInvocationResult, StreamingInvocationResult } from '../invoker/invocation-service.ts';

/** How front doors run a function: InvocationService satisfies it. */
export interface FrontDoorInvoker {
  /** Throws ResourceNotFoundException for unknown functions, TooManyRequestsException when throttled. */
  invoke(request: SyncInvocation): Promise<SyncInvocationResult>;
  /** Like invoke, with a streaming function's response handed over as it streams. */
  invokeStreaming(request: SyncInvocation): Promise<StreamingInvocationResult>;
}

/** An HTTP request as it arrived, before any front door interprets it. */
export interface IncomingHttpRequest {
  method: string;
  /** The path as sent on the request line: percent-encoded, without the query. */
  rawPath: string;
  /** The query string as sent, without `?` (empty when none). */
  rawQuery: string;
  /** Header fields in arrival order, names as sent, values decoded as UTF-8. */
  headers: ReadonlyArray<readonly [string, string]>;
  body: Buffer;
  /** Address of the TCP peer. */
  sourceIp: string;
  /** `HTTP/1.1` */
  protocol: string;
  /** Epoch ms when the request arrived. */
  receivedAtMs: number;
}

/** What a front door sends back. */
export interface HttpResult {
  status: number;
  /** Reason phrase; Node's default for the status when absent. */
  statusMessage?: string;
  /** Header fields in order; a name may repeat (set-cookie). */
  headers: Array<[string, string]>;
  body: Buffer;
  /** A body streamed as it is produced (RESPONSE_STREAM URLs); `body` is then empty. */
  stream?: AsyncIterable<Buffer>;
}
