/**
 * Validation of function configuration, with Lambda's limits and messages. Range and
 * pattern violations are ValidationException ("1 validation error detected: ..."), as
 * Lambda's API model reports them; semantic problems are InvalidParameterValueException.
 */
import { InvalidParameterValueException, validationError } from '../errors/platform-errors.ts';
import { reservedVariableNames } from '../environments/lambda-env-vars.ts';

export const limits = Object.freeze({
  timeoutSeconds: { min: 1, max: 900, default: 3 },
  memoryMb: { min: 128, max: 10_240, default: 128 },
  ephemeralStorageMb: { min: 512, max: 10_240, default: 512 },
  /** All environment variables together: 4 KB. */
  environmentBytes: 4096,
  descriptionLength: 256,
  handlerLength: 128,
});

const rolePattern = /^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/;
const handlerPattern = /^[^\s]+$/;
const envKeyPattern = /^[a-zA-Z]([a-zA-Z0-9_])+$/;

export function checkInteger(value: unknown, member: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidParameterValueException(`${member} must be an integer, got ${JSON.stringify(value)}`);
  }
  if (value < min) throw validationError(value, member, `Member must have value greater than or equal to ${min}`);
  if (value > max) throw validationError(value, member, `Member must have value less than or equal to ${max}`);
  return value;
}

export function checkString(value: unknown, member: string): string {
  if (typeof value !== 'string') throw new InvalidParameterValueException(`${member} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

export function checkRole(value: unknown): string {
  const role = checkString(value, 'role');
  if (!rolePattern.test(role)) {
    throw validationError(role, 'role', 'Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+');
  }
  return role;
}

export function checkHandler(value: unknown): string {
  const handler = checkString(value, 'handler');
  if (handler.length > limits.handlerLength) throw validationError(handler, 'handler', 'Member must have length less than or equal to 128');
  if (!handlerPattern.test(handler)) throw validationError(handler, 'handler', 'Member must satisfy regular expression pattern: [^\\s]+');
  return handler;
}

export function checkDescription(value: unknown): string {
  const description = checkString(value, 'description');
  if (description.length > limits.descriptionLength) throw validationError(description, 'description', 'Member must have length less than or equal to 256');
  return description;
}

export function checkEnvironment(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') throw new InvalidParameterValueException('Environment must be an object with a Variables map.');
  const variables = (value as { Variables?: unknown }).Variables ?? {};
  if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) {
    throw new InvalidParameterValueException('Environment.Variables must be a map of strings.');
  }
  const out: Record<string, string> = {};
  const reserved: string[] = [];
  for (const [key, v] of Object.entries(variables)) {
    if (!envKeyPattern.test(key)) {
      throw validationError(key, 'environment.variables', 'Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+');
    }
    if (typeof v !== 'string') throw new InvalidParameterValueException(`Environment variable ${key} must be a string.`);
    if (reservedVariableNames.has(key)) reserved.push(key);
    out[key] = v;
  }
  if (reserved.length > 0) {
    throw new InvalidParameterValueException(
      'Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: ' +
        reserved.join(', '),
    );
  }
  const measured = JSON.stringify(out);
  if (Buffer.byteLength(measured) > limits.environmentBytes) {
    throw new InvalidParameterValueException(
      `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${measured.slice(0, 200)}...`,
    );
  }
  return out;
}

export function checkArchitectures(value: unknown): string[] {
  if (value === undefined) return ['x86_64'];
  if (!Array.isArray(value) || value.length !== 1) throw validationError(value, 'architectures', 'Member must have length less than or equal to 1');
  const arch = value[0];
  if (arch !== 'x86_64' && arch !== 'arm64') throw validationError(arch, 'architectures', 'Member must satisfy enum value set: [x86_64, arm64]');
  return [arch];
}

export function checkEphemeralStorage(value: unknown): number {
  if (value === undefined) return limits.ephemeralStorageMb.default;
  const size = (value as { Size?: unknown } | null)?.Size;
  return checkInteger(size, 'ephemeralStorage.size', limits.ephemeralStorageMb.min, limits.ephemeralStorageMb.max);
}

export function checkLoggingConfig(value: unknown, functionName: string): { logFormat: 'Text' | 'JSON'; logGroup: string; applicationLogLevel?: string; systemLogLevel?: string } {
  const v = (value ?? {}) as { LogFormat?: unknown; LogGroup?: unknown; ApplicationLogLevel?: unknown; SystemLogLevel?: unknown };
  const logFormat = v.LogFormat ?? 'Text';
  if (logFormat !== 'Text' && logFormat !== 'JSON') throw validationError(logFormat, 'loggingConfig.logFormat', 'Member must satisfy enum value set: [JSON, Text]');
  const logGroup = v.LogGroup === undefined ? `/aws/lambda/${functionName}` : checkString(v.LogGroup, 'loggingConfig.logGroup');
  const out: { logFormat: 'Text' | 'JSON'; logGroup: string; applicationLogLevel?: string; systemLogLevel?: string } = { logFormat, logGroup };
  if (logFormat === 'JSON') {
    const app = v.ApplicationLogLevel ?? 'INFO';
    if (!['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'].includes(app as string)) {
      throw validationError(app, 'loggingConfig.applicationLogLevel', 'Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]');
    }
    const sys = v.SystemLogLevel ?? 'INFO';
    if (!['DEBUG', 'INFO', 'WARN'].includes(sys as string)) {
      throw validationError(sys, 'loggingConfig.systemLogLevel', 'Member must satisfy enum value set: [DEBUG, INFO, WARN]');
    }
    out.applicationLogLevel = app as string;
    out.systemLogLevel = sys as string;
  }
  return out;
}

export function checkTracingMode(value: unknown): 'PassThrough' | 'Active' {
  const mode = (value as { Mode?: unknown } | undefined)?.Mode ?? 'PassThrough';
  if (mode !== 'PassThrough' && mode !== 'Active') throw validationError(mode, 'tracingConfig.mode', 'Member must satisfy enum value set: [Active, PassThrough]');
  return mode;
}

export function checkTags(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidParameterValueException('Tags must be a map of strings.');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new InvalidParameterValueException(`Tag ${k} must have a string value.`);
    out[k] = v;
  }
  return out;
}

/**
 * Lambda Managed Instances configuration: a capacity provider ARN and how many invokes
 * one execution environment serves at once (PerExecutionEnvironmentMaxConcurrency, 1-64).
 */
export function checkCapacityProviderConfig(value: unknown): { capacityProviderArn: string; maxConcurrency: number } | undefined {
  if (value === undefined || value === null) return undefined;
  const lmi = (value as { LambdaManagedInstancesCapacityProviderConfig?: Record<string, unknown> }).LambdaManagedInstancesCapacityProviderConfig;
  if (typeof lmi !== 'object' || lmi === null) {
    throw new InvalidParameterValueException('CapacityProviderConfig must hold LambdaManagedInstancesCapacityProviderConfig.');
  }
  const arn = checkString(lmi.CapacityProviderArn, 'capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig.capacityProviderArn');
  const maxConcurrency =
    lmi.PerExecutionEnvironmentMaxConcurrency === undefined
      ? 16
      : checkInteger(lmi.PerExecutionEnvironmentMaxConcurrency, 'capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig.perExecutionEnvironmentMaxConcurrency', 1, 64);
  return { capacityProviderArn: arn, maxConcurrency };
}

/** DeadLetterConfig: an SQS queue ARN (served by Nimbus's built-in queues), or empty to clear. */
export function checkDeadLetterConfig(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const target = (value as { TargetArn?: unknown }).TargetArn;
  if (target === undefined || target === '') return undefined;
  if (typeof target !== 'string' || !/^arn:aws[a-zA-Z-]*:sqs:[a-z]{2}(-gov)?-[a-z]+-\d:\d{12}:[a-zA-Z0-9-_]{1,80}$/.test(target)) {
    throw new InvalidParameterValueException(
      `The provided DeadLetterConfig target ${String(target)} is not supported: Nimbus takes an SQS queue ARN (its built-in queues, listed with \`nimbus queue\`).`,
    );
  }
  return target;
}
