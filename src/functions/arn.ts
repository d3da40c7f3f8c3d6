/**
 * Function names as callers may give them (name, `name:qualifier`, partial ARN
 * `123456789012:function:name`, full ARN) and the ARNs Nimbus reports.
 */
import { InvalidParameterValueException, validationError } from '../errors/platform-errors.ts';

export interface FunctionRef {
  functionName: string;
  qualifier?: string;
}

/** Lambda's FunctionName pattern (botocore service-2.json, NamespacedFunctionName). */
const functionNamePattern =
  /^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?:([a-z]{2}(?:-gov)?-[a-z]+-\d{1}):)?(?:(\d{12}):)?(?:function:)?([a-zA-Z0-9-_.]+)(?::(\$LATEST|[a-zA-Z0-9-_]+))?$/;

export const plainFunctionNamePattern = /^[a-zA-Z0-9-_]{1,64}$/;

export interface ParseOptions {
  accountId: string;
  region: string;
}

export function parseFunctionRef(raw: string, options: ParseOptions): FunctionRef {
  if (raw.length < 1 || raw.length > 170) throw validationError(raw, 'functionName', 'Member must have length less than or equal to 170');
  const m = functionNamePattern.exec(raw);
  if (!m) {
    throw validationError(
      raw,
      'functionName',
      'Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?',
    );
  }
  const [, region, account, name, qualifier] = m;
  if (account !== undefined && account !== options.accountId) {
    throw new InvalidParameterValueException(`The account ID in the ARN (${account}) does not match this server's account (${options.accountId}).`);
  }
  if (region !== undefined && region !== options.region) {
    throw new InvalidParameterValueException(`The region in the ARN (${region}) does not match this server's region (${options.region}).`);
  }
  if (!plainFunctionNamePattern.test(name!)) throw validationError(name, 'functionName', 'Member must have length less than or equal to 64');
  return { functionName: name!, qualifier };
}

export function functionArn(region: string, accountId: string, functionName: string, qualifier?: string): string {
  const base = `arn:aws:lambda:${region}:${accountId}:function:${functionName}`;
  return qualifier ? `${base}:${qualifier}` : base;
}

/** `2019-11-14T22:18:39.011+0000`, Lambda's LastModified format. */
export function lambdaTimestamp(at: Date): string {
  return at.toISOString().replace('Z', '+0000');
}
