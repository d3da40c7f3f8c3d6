/**
 * Checks the bodies of CreateFunctionUrlConfig and UpdateFunctionUrlConfig with Lambda's
 * model constraints (botocore lambda service-2.json: FunctionUrlAuthType, Cors,
 * InvokeMode, FunctionUrlQualifier), answering with Lambda's ValidationException text.
 */
import { validationError } from '../../errors/platform-errors.ts';
import type { UrlAuthType, UrlCors, UrlInvokeMode } from './types.ts';

/** An alias name; never `$LATEST` nor a version number (FunctionUrlQualifier). */
export const urlQualifierPattern = /^(?!\d+$)[0-9a-zA-Z_-]{1,128}$/;

export function checkQualifier(value: string): string {
  if (!urlQualifierPattern.test(value)) throw validationError(value, 'qualifier', 'Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)');
  return value;
}

export function checkAuthType(value: unknown): UrlAuthType {
  if (value !== 'NONE' && value !== 'AWS_IAM') throw validationError(value ?? 'null', 'authType', 'Member must satisfy enum value set: [NONE, AWS_IAM]');
  return value;
}

export function checkInvokeMode(value: unknown): UrlInvokeMode {
  if (value === undefined) return 'BUFFERED';
  if (value !== 'BUFFERED' && value !== 'RESPONSE_STREAM') throw validationError(value, 'invokeMode', 'Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]');
  return value;
}

function stringList(value: unknown, member: string, maxItems: number, maxLength: number): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw validationError(value, `cors.${member}`, 'Member must be a list of strings');
  if (value.length > maxItems) throw validationError(value, `cors.${member}`, `Member must have length less than or equal to ${maxItems}`);
  for (const item of value) {
    if (typeof item !== 'string' || item.length < 1 || item.length > maxLength) {
      throw validationError(item, `cors.${member}.member`, `Member must have length between 1 and ${maxLength}`);
    }
  }
  return value as string[];
}

const methods = new Set(['GET', 'PUT', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS', '*']);

export function checkCors(value: unknown): UrlCors | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw validationError(value, 'cors', 'Member must be a structure');
  const c = value as Record<string, unknown>;
  const cors: UrlCors = {};
  if (c.AllowCredentials !== undefined) {
    if (typeof c.AllowCredentials !== 'boolean') throw validationError(c.AllowCredentials, 'cors.allowCredentials', 'Member must be a boolean');
    cors.allowCredentials = c.AllowCredentials;
  }
  const allowHeaders = stringList(c.AllowHeaders, 'allowHeaders', 100, 1024);
  if (allowHeaders) cors.allowHeaders = allowHeaders;
  const allowMethods = stringList(c.AllowMethods, 'allowMethods', 6, 6);
  if (allowMethods) {
    for (const m of allowMethods) if (!methods.has(m.toUpperCase())) throw validationError(m, 'cors.allowMethods.member', 'Member must satisfy regular expression pattern: .*');
    cors.allowMethods = allowMethods.map((m) => m.toUpperCase());
  }
  const allowOrigins = stringList(c.AllowOrigins, 'allowOrigins', 100, 253);
  if (allowOrigins) cors.allowOrigins = allowOrigins;
  const exposeHeaders = stringList(c.ExposeHeaders, 'exposeHeaders', 100, 1024);
  if (exposeHeaders) cors.exposeHeaders = exposeHeaders;
  if (c.MaxAge !== undefined) {
    if (typeof c.MaxAge !== 'number' || !Number.isInteger(c.MaxAge) || c.MaxAge < 0 || c.MaxAge > 86400) {
      throw validationError(c.MaxAge, 'cors.maxAge', 'Member must have value between 0 and 86400');
    }
    cors.maxAgeSeconds = c.MaxAge;
  }
  return cors;
}

/** The wire shape of a stored Cors (PascalCase, as Lambda returns it). */
export function corsWire(cors: UrlCors | undefined): Record<string, unknown> | undefined {
  if (!cors) return undefined;
  return {
    ...(cors.allowCredentials !== undefined ? { AllowCredentials: cors.allowCredentials } : {}),
    ...(cors.allowHeaders ? { AllowHeaders: cors.allowHeaders } : {}),
    ...(cors.allowMethods ? { AllowMethods: cors.allowMethods } : {}),
    ...(cors.allowOrigins ? { AllowOrigins: cors.allowOrigins } : {}),
    ...(cors.exposeHeaders ? { ExposeHeaders: cors.exposeHeaders } : {}),
    ...(cors.maxAgeSeconds !== undefined ? { MaxAge: cors.maxAgeSeconds } : {}),
  };
}
