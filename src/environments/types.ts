/**
 * Contracts of the execution plane: what an environment needs to start, what an
 * invocation carries in and out. The invoker depends on these, never on the
 * environment's HTTP servers or processes.
 */

export type InitializationType = 'on-demand' | 'provisioned-concurrency' | 'lambda-managed-instances';

/** Everything needed to start an environment for one function version. */
export interface EnvironmentSpec {
  functionName: string;
  /** `$LATEST` or a version number. */
  version: string;
  /** Unqualified function ARN. */
  functionArn: string;
  /** The account the function belongs to (the Extensions API's register answer tells it). */
  accountId: string;
  runtimeId: string;
  handler: string;
  memoryMb: number;
  timeoutSeconds: number;
  ephemeralStorageMb: number;
  /** The function's own variables (Environment.Variables). */
  variables: Record<string, string>;
  /** Host path of the extracted code. */
  codeDir: string;
  /**
   * Host path of the function's layers merged into one tree (read-only), seen as /opt.
   * Absent: the environment gets an empty /opt.
   */
  layersDir?: string;
  logFormat: 'Text' | 'JSON';
  logGroup: string;
  applicationLogLevel?: string;
  systemLogLevel?: string;
  region: string;
  architecture: string;
  initializationType: InitializationType;
  /** Invokes one environment serves at once: 1 on demand, more on managed instances. */
  maxConcurrency: number;
  /** Identifies the configuration this environment was built from (RevisionId). */
  revisionId: string;
}

export interface InvokeRequest {
  requestId: string;
  payload: Buffer;
  /** ARN the caller used (may carry `:alias` / `:version`). */
  invokedFunctionArn: string;
  /** X-Ray header value for `Lambda-Runtime-Trace-Id`. */
  traceId: string;
  /** Decoded client context JSON (sync invokes only). */
  clientContext?: string;
  /** Keep the tail of this invocation's log (LogType: Tail). */
  wantLogTail: boolean;
}

/** How an invocation ended, as Lambda distinguishes it, once the response is whole. */
export type BufferedOutcome =
  /** The runtime posted a response. */
  | { kind: 'success'; payload: Buffer; contentType?: string }
  /** The runtime posted an error (function error): status stays 200. */
  | { kind: 'function-error'; payload: Buffer; errorType: string }
  /**
   * The platform ended the invocation: timeout, runtime exit, out of memory, init
   * failure, oversized response. The environment is reset afterwards.
   */
  | { kind: 'platform-error'; errorType: string; errorMessage: string; payload: Buffer };

/** How a streamed response ended: a mid-stream error arrives in the HTTP trailers. */
export interface StreamCompletion {
  errorType?: string;
  /** The error object (JSON text) the runtime sent, decoded from base64. */
  errorBody?: string;
  /** Bytes the function streamed. */
  producedBytes: number;
}

/**
 * The runtime streams its response (`Lambda-Runtime-Function-Response-Mode: streaming`):
 * the caller reads `body` as it arrives; `completion` settles when the stream ends.
 */
export interface StreamedOutcome {
  kind: 'stream';
  contentType?: string;
  body: AsyncIterable<Buffer>;
  completion: Promise<StreamCompletion>;
}

export type InvokeOutcome = BufferedOutcome | StreamedOutcome;

export interface InvokeResult {
  outcome: InvokeOutcome;
  requestId: string;
  durationMs: number;
  billedDurationMs: number;
  maxMemoryUsedMb: number;
  /** Present on the invoke that paid for Init (cold start). */
  initDurationMs?: number;
  /** Last 4 KB of the invocation's log, when asked for. */
  logTail?: string;
}

/** One line a function (or the platform) wrote to its log. */
export interface FunctionLogLine {
  functionName: string;
  logStream: string;
  timestampMs: number;
  message: string;
  requestId?: string;
}

/** Where environments send log lines; the server batches them into the store. */
export interface FunctionLogSink {
  write(line: FunctionLogLine): void;
}
