/**
 * Control-plane errors, named and shaped as AWS Lambda names them.
 *
 * Handlers throw these; one renderer per API surface (src/api/error-render.ts) turns
 * them into the restJson1 error shape: status, `x-amzn-ErrorType` header and a
 * `{"Type","message"}` body. Unknown errors become a logged 500 ServiceException.
 */

export type ErrorFault = 'User' | 'Service';

export abstract class PlatformError extends Error {
  abstract override readonly name: string;
  abstract readonly statusCode: number;
  readonly fault: ErrorFault = 'User';
  /** Extra members of the error body (e.g. TooManyRequestsException's Reason). */
  readonly extraBody: Record<string, unknown> = {};
  /** Extra response headers (e.g. Retry-After). */
  readonly extraHeaders: Record<string, string> = {};

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class InvalidParameterValueException extends PlatformError {
  override readonly name = 'InvalidParameterValueException';
  readonly statusCode = 400;
}

export class InvalidRequestContentException extends PlatformError {
  override readonly name = 'InvalidRequestContentException';
  readonly statusCode = 400;
}

export class ResourceNotFoundException extends PlatformError {
  override readonly name = 'ResourceNotFoundException';
  readonly statusCode = 404;
}

export class ResourceConflictException extends PlatformError {
  override readonly name = 'ResourceConflictException';
  readonly statusCode = 409;
}

export class PreconditionFailedException extends PlatformError {
  override readonly name = 'PreconditionFailedException';
  readonly statusCode = 412;
}

export class RequestTooLargeException extends PlatformError {
  override readonly name = 'RequestTooLargeException';
  readonly statusCode = 413;
}

export class UnsupportedMediaTypeException extends PlatformError {
  override readonly name = 'UnsupportedMediaTypeException';
  readonly statusCode = 415;
}

export type ThrottleReason =
  | 'ConcurrentInvocationLimitExceeded'
  | 'ReservedFunctionConcurrentInvocationLimitExceeded'
  | 'FunctionInvocationRateLimitExceeded'
  | 'ReservedFunctionInvocationRateLimitExceeded';

export class TooManyRequestsException extends PlatformError {
  override readonly name = 'TooManyRequestsException';
  readonly statusCode = 429;
  constructor(message: string, reason: ThrottleReason, retryAfterSeconds = 1) {
    super(message);
    this.extraBody.Reason = reason;
    this.extraHeaders['Retry-After'] = String(retryAfterSeconds);
  }
}

export class ServiceException extends PlatformError {
  override readonly name = 'ServiceException';
  readonly statusCode = 500;
  override readonly fault = 'Service';
}

/** Lambda answers 502 when a function's runtime cannot be used. */
export class InvalidRuntimeException extends PlatformError {
  override readonly name = 'InvalidRuntimeException';
  readonly statusCode = 502;
}


/** Lambda answers model constraint violations (ranges, patterns) with ValidationException. */
export class ValidationException extends PlatformError {
  override readonly name = 'ValidationException';
  readonly statusCode = 400;
}

/** No operation at this method and path. */
export class UnknownOperationException extends PlatformError {
  override readonly name = 'UnknownOperationException';
  readonly statusCode = 404;
}

/** Lambda's "1 validation error detected: Value 'x' at 'timeout' failed to satisfy constraint: ..." */
export function validationError(value: unknown, member: string, constraint: string): ValidationException {
  const shown = typeof value === 'string' ? value : JSON.stringify(value);
  return new ValidationException(`1 validation error detected: Value '${shown}' at '${member}' failed to satisfy constraint: ${constraint}`);
}


export class ProvisionedConcurrencyConfigNotFoundException extends PlatformError {
  override readonly name = 'ProvisionedConcurrencyConfigNotFoundException';
  readonly statusCode = 404;
}

/** Every exception class by its AWS name; tests keep this registry honest. */
export const platformErrorClasses = {
  InvalidParameterValueException,
  InvalidRequestContentException,
  ResourceNotFoundException,
  ResourceConflictException,
  PreconditionFailedException,
  RequestTooLargeException,
  UnsupportedMediaTypeException,
  TooManyRequestsException,
  ServiceException,
  InvalidRuntimeException,
  ValidationException,
  UnknownOperationException,
  ProvisionedConcurrencyConfigNotFoundException,
} as const;
