/**
 * The trace an invocation continues, read from the headers of its HTTP event or from
 * the trace carrier of its records (triggers.ts). Three propagation styles, tried in
 * Datadog's default order: Datadog's own headers, then W3C Trace Context, then AWS X-Ray.
 * A header that is malformed is skipped so that the next style can still answer: a
 * broken upstream tracer must never break an invocation's trace, let alone the agent.
 */
import { decimalToHex16, isZeroId } from './ids.ts';

export interface TraceContext {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits: the caller's span, which becomes the `aws.lambda` span's parent. */
  parentId: string;
  samplingPriority?: number;
  source: 'datadog' | 'tracecontext' | 'xray';
}

type Headers = Record<string, string>;

const upper64Zero = '0000000000000000';

function integer(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\s*-?\d{1,3}\s*$/.test(raw)) return undefined;
  return Number(raw);
}

/** `_dd.p.tid=<16 hex>` in `x-datadog-tags`: the upper 64 bits of a 128-bit trace id. */
function upperTraceBits(tags: string | undefined): string | undefined {
  if (!tags) return undefined;
  for (const pair of tags.split(',')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== '_dd.p.tid') continue;
    const value = pair.slice(eq + 1).trim().toLowerCase();
    return /^[0-9a-f]{16}$/.test(value) ? value : undefined;
  }
  return undefined;
}

function fromDatadog(h: Headers): TraceContext | undefined {
  const rawTrace = h['x-datadog-trace-id'];
  if (rawTrace === undefined) return undefined;
  const lower = decimalToHex16(rawTrace.trim());
  if (lower === undefined || isZeroId(lower)) return undefined;
  // A missing parent is how Datadog Synthetics and some proxies start a trace: the
  // invocation's span is then the root of the given trace (parent id 0).
  const rawParent = h['x-datadog-parent-id'];
  const parent = rawParent === undefined ? upper64Zero : decimalToHex16(rawParent.trim());
  if (parent === undefined) return undefined;
  const ctx: TraceContext = {
    traceId: (upperTraceBits(h['x-datadog-tags']) ?? upper64Zero) + lower,
    parentId: parent,
    source: 'datadog',
  };
  const priority = integer(h['x-datadog-sampling-priority']);
  if (priority !== undefined) ctx.samplingPriority = priority;
  return ctx;
}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** `dd=s:2;...` in `tracestate`: Datadog's own priority, finer than the sampled flag. */
function tracestatePriority(tracestate: string | undefined): number | undefined {
  if (!tracestate) return undefined;
  for (const member of tracestate.split(',')) {
    const m = member.trim();
    if (!m.startsWith('dd=')) continue;
    for (const field of m.slice(3).split(';')) {
      if (field.startsWith('s:')) return integer(field.slice(2));
    }
  }
  return undefined;
}

function fromTraceContext(h: Headers): TraceContext | undefined {
  const raw = h['traceparent'];
  if (raw === undefined) return undefined;
  const m = traceparentPattern.exec(raw.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  // Version ff is forbidden; version 00 has exactly four fields; later versions may add more.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (isZeroId(traceId!) || isZeroId(parentId!)) return undefined;
  const sampled = (parseInt(flags!, 16) & 1) === 1;
  const ddPriority = tracestatePriority(h['tracestate']);
  // The dd member wins only when it agrees with the flag (W3C: the flag is authoritative).
  const priority = ddPriority !== undefined && ddPriority > 0 === sampled ? ddPriority : sampled ? 1 : 0;
  return { traceId: traceId!, parentId: parentId!, samplingPriority: priority, source: 'tracecontext' };
}

/**
 * `Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=1`. Datadog keeps the low 64 bits
 * of the root (its last 16 hex digits) as the trace id, so that a Datadog tracer reading
 * the same header downstream lands in the same trace.
 */
function fromXray(h: Headers): TraceContext | undefined {
  const raw = h['x-amzn-trace-id'];
  if (raw === undefined) return undefined;
  let root: string | undefined;
  let parent: string | undefined;
  let sampled: string | undefined;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim().toLowerCase();
    if (key === 'root') root = value;
    else if (key === 'parent') parent = value;
    else if (key === 'sampled') sampled = value;
  }
  const rm = root === undefined ? null : /^1-[0-9a-f]{8}-([0-9a-f]{24})$/.exec(root);
  if (!rm || parent === undefined || !/^[0-9a-f]{16}$/.test(parent) || isZeroId(parent)) return undefined;
  const lower = rm[1]!.slice(8);
  if (isZeroId(lower)) return undefined;
  const ctx: TraceContext = { traceId: upper64Zero + lower, parentId: parent, source: 'xray' };
  if (sampled === '1') ctx.samplingPriority = 1;
  else if (sampled === '0') ctx.samplingPriority = 0;
  return ctx;
}

function fromHeaders(h: Headers): TraceContext | undefined {
  return fromDatadog(h) ?? fromTraceContext(h) ?? fromXray(h);
}

/**
 * The context of `headers` (lower-cased names), or of `carrier` first when the trigger
 * found one inside its records (an SQS or SNS message's `_datadog` attribute, its
 * AWSTraceHeader, EventBridge's `detail._datadog`): those name the producer of the very
 * message the function handles, which an HTTP event's headers cannot.
 */
export function extractTraceContext(headers: Headers, carrier?: Headers): TraceContext | undefined {
  try {
    return (carrier ? fromHeaders(carrier) : undefined) ?? fromHeaders(headers);
  } catch {
    // Header values come from anywhere; a value of the wrong type is "no context".
    return undefined;
  }
}
