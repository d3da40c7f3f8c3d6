/**
 * The environment variables a Lambda execution environment gets: Lambda's reserved set,
 * its unreserved defaults, and the function's own. Nothing is inherited from the
 * server's environment (an inherited NODE_EXTRA_CA_CERTS alone doubles Node's start-up).
 */
import type { EnvironmentSpec } from './types.ts';

/** Keys a function may not set (Lambda's reserved variables). */
export const reservedVariableNames: ReadonlySet<string> = new Set([
  '_HANDLER',
  '_X_AMZN_TRACE_ID',
  'AWS_DEFAULT_REGION',
  'AWS_REGION',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_ACCESS_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_LAMBDA_RUNTIME_API',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
  'AWS_LAMBDA_MAX_CONCURRENCY',
]);

/** What Nimbus itself adds to an environment's variables. */
export interface PlatformEnv {
  /** The environment's own loopback address (sandbox-addresses.ts), as NIMBUS_SANDBOX_ADDRESS. */
  sandboxAddress: string;
  /** Defaults the function's own variables may override (agent-defaults.ts). */
  defaults: Record<string, string>;
}

export interface EnvironmentPaths {
  /** Code dir as the environment sees it (`/var/task` under bubblewrap). */
  taskRoot: string;
  /** Runtime dir as the environment sees it (`/var/runtime` under bubblewrap). */
  runtimeDir: string;
  /** Layers dir as the environment sees it (`/opt` under bubblewrap). */
  optDir: string;
  /** Writable temp dir as the environment sees it (`/tmp` under bubblewrap). */
  tmpDir: string;
}

/**
 * @param interpreterDir where the managed runtime's interpreter lives; first on PATH, as
 *   Lambda puts /var/lang/bin first, so that extensions written for the runtime's language
 *   (`#!/usr/bin/env node`) find it.
 */
export function buildLambdaEnvironment(
  spec: EnvironmentSpec,
  paths: EnvironmentPaths,
  runtimeApi: string,
  logStream: string,
  launcherEnv: Record<string, string>,
  platform: PlatformEnv,
  interpreterDir?: string,
): Record<string, string> {
  const isCustom = spec.runtimeId.startsWith('provided');
  const env: Record<string, string> = {
    // Unreserved defaults first, so the function's own variables can override them.
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    PATH: `${interpreterDir ? interpreterDir + ':' : ''}/usr/local/bin:/usr/bin/:/bin:${paths.optDir}/bin`,
    LD_LIBRARY_PATH: `/lib64:/usr/lib64:${paths.runtimeDir}:${paths.runtimeDir}/lib:${paths.taskRoot}:${paths.taskRoot}/lib:${paths.optDir}/lib`,
    AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    AWS_XRAY_DAEMON_ADDRESS: '169.254.79.129:2000',
    TMPDIR: paths.tmpDir,
    HOME: paths.tmpDir,
    ...launcherEnv,
    ...platform.defaults,
    ...spec.variables,
    NIMBUS_SANDBOX_ADDRESS: platform.sandboxAddress,
    // Reserved: always Lambda's values.
    _HANDLER: spec.handler,
    AWS_REGION: spec.region,
    AWS_DEFAULT_REGION: spec.region,
    AWS_LAMBDA_FUNCTION_NAME: spec.functionName,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: spec.version,
    AWS_LAMBDA_INITIALIZATION_TYPE: spec.initializationType,
    AWS_LAMBDA_LOG_GROUP_NAME: spec.logGroup,
    AWS_LAMBDA_LOG_STREAM_NAME: logStream,
    AWS_LAMBDA_RUNTIME_API: runtimeApi,
    LAMBDA_TASK_ROOT: paths.taskRoot,
    LAMBDA_RUNTIME_DIR: paths.runtimeDir,
    // Credentials: Nimbus has no IAM; functions get well-formed local placeholders.
    AWS_ACCESS_KEY_ID: 'ASIANIMBUSLOCAL00000',
    AWS_ACCESS_KEY: 'ASIANIMBUSLOCAL00000',
    AWS_SECRET_ACCESS_KEY: 'nimbus-local-secret-access-key',
    AWS_SESSION_TOKEN: 'nimbus-local-session-token',
  };
  if (!isCustom) env.AWS_EXECUTION_ENV = `AWS_Lambda_${spec.runtimeId}`;
  if (spec.initializationType === 'lambda-managed-instances') env.AWS_LAMBDA_MAX_CONCURRENCY = String(spec.maxConcurrency);
  if (spec.logFormat === 'JSON') {
    env.AWS_LAMBDA_LOG_FORMAT = 'JSON';
    if (spec.applicationLogLevel) env.AWS_LAMBDA_LOG_LEVEL = spec.applicationLogLevel;
  }
  return env;
}

/** What extensions do not inherit from the function's environment (§2.4; RIE drops every `_` key). */
const notForExtensions = new Set([
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_XRAY_CONTEXT_MISSING',
  'AWS_XRAY_DAEMON_ADDRESS',
  'LAMBDA_RUNTIME_DIR',
  'LAMBDA_TASK_ROOT',
]);

/** The environment of an external extension, from the function's (without the launcher's). */
export function extensionEnvironment(functionEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(functionEnv)) {
    if (!key.startsWith('_') && !notForExtensions.has(key)) env[key] = value;
  }
  return env;
}
