/** What the response mappers of every front door share. */
import { MalformedResponse } from '../http/outgoing.ts';

/** The function's payload as a JSON value; MalformedResponse when it is not JSON. */
export function parsePayload(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    throw new MalformedResponse('The function returned a response that is not valid JSON.');
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `statusCode` as an integer from 200 to 599 (a string of digits is accepted, as API Gateway does). */
export function statusCodeOf(value: unknown): number {
  const n = typeof value === 'string' && /^\d{3}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 200 || n > 599) {
    throw new MalformedResponse(`statusCode must be an integer from 200 to 599, got ${JSON.stringify(value)}.`);
  }
  return n;
}

export function optionalObject(value: unknown, member: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw new MalformedResponse(`${member} must be an object.`);
  return value;
}

export function optionalString(value: unknown, member: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new MalformedResponse(`${member} must be a string, got ${typeof value}.`);
  return value;
}

export function optionalBoolean(value: unknown, member: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new MalformedResponse(`${member} must be a boolean.`);
  return value;
}
