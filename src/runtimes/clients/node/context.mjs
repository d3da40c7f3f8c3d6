// @ts-check
/**
 * The `context` object handed to handlers, built from the `/next` response
 * headers and Lambda's environment variables.
 */

/**
 * @param {string | undefined} value
 * @param {string} name
 */
function parseJsonHeader(value, name) {
  if (value === undefined || value === '') return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${String(err)}`);
  }
}

const env = process.env;

/**
 * Adds the invocation data to `base` (the object holding
 * `callbackWaitsForEmptyEventLoop` and `succeed`/`fail`/`done`) and returns it.
 * Throws when a JSON header cannot be parsed (reported as an invoke error).
 * @template {object} T
 * @param {T} base
 * @param {import('node:http').IncomingHttpHeaders} headers lower-cased
 * @param {boolean} setTraceEnv copy the trace header to `_X_AMZN_TRACE_ID`
 */
export function attachContext(base, headers, setTraceEnv) {
  const h = /** @type {Record<string, string | undefined>} */ (headers);
  const deadline = Number(h['lambda-runtime-deadline-ms']);
  const clientContext = parseJsonHeader(h['lambda-runtime-client-context'], 'ClientContext');
  const identity = parseJsonHeader(h['lambda-runtime-cognito-identity'], 'CognitoIdentity');
  if (setTraceEnv) {
    const trace = h['lambda-runtime-trace-id'];
    if (trace) env._X_AMZN_TRACE_ID = trace;
    else delete env._X_AMZN_TRACE_ID;
  }
  /** @type {Record<string, unknown>} */
  const data = {
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext,
    identity,
    invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
    awsRequestId: h['lambda-runtime-aws-request-id'],
  };
  const tenantId = h['lambda-runtime-aws-tenant-id'];
  if (tenantId) data.tenantId = tenantId;
  data.getRemainingTimeInMillis = () => deadline - Date.now();
  return Object.assign(base, data);
}
