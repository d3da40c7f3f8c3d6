/**
 * Span and trace ids as the agent's model writes them (lowercase hex: 16 digits for a
 * span, 32 for a trace) and the decimal forms Datadog's propagation headers carry.
 */
import { randomBytes } from 'node:crypto';

const zeroSpan = '0000000000000000';
const zeroTrace = '00000000000000000000000000000000';
const uint64Max = (1n << 64n) - 1n;
const hex16 = /^[0-9a-f]{16}$/;
const hex32 = /^[0-9a-f]{32}$/;

/** A random 64-bit span id; an all-zero id means "no span" in every propagation format. */
export function newSpanId(): string {
  for (;;) {
    const id = randomBytes(8).toString('hex');
    if (id !== zeroSpan) return id;
  }
}

/** A random 128-bit trace id (never all zero). */
export function newTraceId(): string {
  for (;;) {
    const id = randomBytes(16).toString('hex');
    if (id !== zeroTrace) return id;
  }
}

export const isSpanId = (id: string): boolean => hex16.test(id);
export const isTraceId = (id: string): boolean => hex32.test(id);
export const isZeroId = (id: string): boolean => /^0+$/.test(id);

/**
 * A decimal unsigned 64-bit integer (`x-datadog-trace-id`) as 16 hex digits; undefined
 * when it is not one (signs, spaces, more than 2^64 - 1).
 */
export function decimalToHex16(decimal: string): string | undefined {
  if (!/^\d{1,20}$/.test(decimal)) return undefined;
  const n = BigInt(decimal);
  if (n > uint64Max) return undefined;
  return n.toString(16).padStart(16, '0');
}

/** Hex (up to 16 digits) as the decimal string Datadog headers and payloads use. */
export function hexToDecimal(hex: string): string | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) return undefined;
  return BigInt(`0x${hex}`).toString(10);
}
