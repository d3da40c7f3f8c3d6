/**
 * Checks a parsed TelemetryBatch body field by field before anything is stored, so that a
 * bad batch is refused whole with a message naming the first bad field
 * (`metrics[3].values[1] must be a finite number, got "x"`), and the store only ever sees
 * the shapes src/agent/model.ts promises.
 *
 * Optional members may be absent or null (null is removed, so later code sees only
 * absent). Unknown members are ignored: a newer agent may send more.
 */
import type { TelemetryBatch } from '../agent/model.ts';
import { InvalidRequestContentException } from '../errors/platform-errors.ts';
import { plainFunctionNamePattern } from '../functions/arn.ts';

type Obj = Record<string, unknown>;

const metricTypes = new Set(['count', 'gauge', 'distribution', 'set']);
const logSources = new Set(['function', 'platform', 'extension']);
const architectures = new Set(['x86_64', 'arm64']);
const hex32 = /^[0-9a-f]{32}$/;
const hex16 = /^[0-9a-f]{16}$/;
/** Date's range in ms; in µs it is beyond a double's integers, so spans use MAX_SAFE_INTEGER. */
const MAX_MS = 8.64e15;

/** The body as a TelemetryBatch, or InvalidRequestContentException naming the bad field. */
export function parseTelemetryBatch(body: unknown): TelemetryBatch {
  if (!isObject(body)) fail('the body', 'must be a JSON object', body);
  checkResource(body.resource);
  checkArray(body, 'metrics', checkMetric);
  checkArray(body, 'spans', checkSpan);
  checkArray(body, 'logs', checkLog);
  checkArray(body, 'security', checkSecurity);
  checkDropped(body.dropped);
  if (!isTime(body.sentAt)) fail('sentAt', 'must be epoch milliseconds (a finite number from 0)', body.sentAt);
  return body as unknown as TelemetryBatch;
}

function checkResource(r: unknown): void {
  if (!isObject(r)) fail('resource', 'must be an object', r);
  if (typeof r.functionName !== 'string' || !plainFunctionNamePattern.test(r.functionName)) {
    fail('resource.functionName', 'must be a function name (1-64 letters, digits, - and _)', r.functionName);
  }
  for (const key of ['functionArn', 'version', 'region', 'accountId', 'runtime', 'extensionVersion'] as const) {
    if (typeof r[key] !== 'string') fail(`resource.${key}`, 'must be a string', r[key]);
  }
  if (!Number.isSafeInteger(r.memorySize) || (r.memorySize as number) < 0) fail('resource.memorySize', 'must be a non-negative integer', r.memorySize);
  if (!architectures.has(r.architecture as string)) fail('resource.architecture', 'must be x86_64 or arm64', r.architecture);
  checkStrings(r.tags, 'resource.tags');
}

function checkMetric(m: unknown, at: string): void {
  if (!isObject(m)) fail(at, 'must be an object', m);
  if (typeof m.name !== 'string' || m.name.length === 0) fail(`${at}.name`, 'must be a non-empty string', m.name);
  if (!metricTypes.has(m.type as string)) fail(`${at}.type`, 'must be one of count, gauge, distribution, set', m.type);
  if (!isFiniteNumber(m.value)) fail(`${at}.value`, 'must be a finite number', m.value);
  checkStrings(m.tags, `${at}.tags`);
  if (!isTime(m.timestamp)) fail(`${at}.timestamp`, 'must be epoch milliseconds (a finite number from 0)', m.timestamp);
  optionalString(m, 'requestId', at);
  if (absent(m, 'values')) {
    if (!absent(m, 'weights')) fail(`${at}.weights`, 'needs values beside it', m.weights);
    return;
  }
  const values = m.values;
  if (!Array.isArray(values)) fail(`${at}.values`, 'must be an array of numbers', values);
  for (let i = 0; i < values.length; i++) if (!isFiniteNumber(values[i])) fail(`${at}.values[${i}]`, 'must be a finite number', values[i]);
  if (!absent(m, 'requestIds')) {
    const ids = m.requestIds;
    if (!Array.isArray(ids) || ids.length !== values.length) fail(`${at}.requestIds`, `must be an array of ${values.length} strings (one per value)`, ids);
    for (let i = 0; i < ids.length; i++) if (typeof ids[i] !== 'string') fail(`${at}.requestIds[${i}]`, 'must be a string', ids[i]);
  }
  if (absent(m, 'weights')) return;
  const weights = m.weights;
  if (!Array.isArray(weights) || weights.length !== values.length) fail(`${at}.weights`, `must be an array of ${values.length} numbers (one per value)`, weights);
  for (let i = 0; i < weights.length; i++) {
    if (!isFiniteNumber(weights[i]) || (weights[i] as number) <= 0) fail(`${at}.weights[${i}]`, 'must be a positive number', weights[i]);
  }
}

function checkSpan(s: unknown, at: string): void {
  if (!isObject(s)) fail(at, 'must be an object', s);
  if (typeof s.traceId !== 'string' || !hex32.test(s.traceId)) fail(`${at}.traceId`, 'must be 32 lowercase hex digits', s.traceId);
  if (typeof s.spanId !== 'string' || !hex16.test(s.spanId)) fail(`${at}.spanId`, 'must be 16 lowercase hex digits', s.spanId);
  if (!absent(s, 'parentId') && (typeof s.parentId !== 'string' || !hex16.test(s.parentId))) {
    fail(`${at}.parentId`, 'must be 16 lowercase hex digits when present', s.parentId);
  }
  for (const key of ['name', 'service', 'resource'] as const) if (typeof s[key] !== 'string') fail(`${at}.${key}`, 'must be a string', s[key]);
  optionalString(s, 'type', at);
  optionalString(s, 'requestId', at);
  if (!isMicros(s.startMicros)) fail(`${at}.startMicros`, 'must be epoch microseconds (a non-negative number)', s.startMicros);
  if (!isMicros(s.durationMicros)) fail(`${at}.durationMicros`, 'must be microseconds (a non-negative number)', s.durationMicros);
  if (typeof s.error !== 'boolean') fail(`${at}.error`, 'must be a boolean', s.error);
  if (!isObject(s.meta)) fail(`${at}.meta`, 'must be an object of strings', s.meta);
  for (const [k, v] of Object.entries(s.meta)) if (typeof v !== 'string') fail(`${at}.meta[${JSON.stringify(k)}]`, 'must be a string', v);
  if (!isObject(s.metrics)) fail(`${at}.metrics`, 'must be an object of numbers', s.metrics);
  for (const [k, v] of Object.entries(s.metrics)) if (!isFiniteNumber(v)) fail(`${at}.metrics[${JSON.stringify(k)}]`, 'must be a finite number', v);
}

function checkLog(l: unknown, at: string): void {
  if (!isObject(l)) fail(at, 'must be an object', l);
  if (!isTime(l.timestamp)) fail(`${at}.timestamp`, 'must be epoch milliseconds (a finite number from 0)', l.timestamp);
  if (!logSources.has(l.source as string)) fail(`${at}.source`, 'must be one of function, platform, extension', l.source);
  if (typeof l.message !== 'string') fail(`${at}.message`, 'must be a string', l.message);
  optionalString(l, 'requestId', at);
  optionalString(l, 'level', at);
  if (!absent(l, 'attributes') && !isObject(l.attributes)) fail(`${at}.attributes`, 'must be an object when present', l.attributes);
}

function checkSecurity(g: unknown, at: string): void {
  if (!isObject(g)) fail(at, 'must be an object', g);
  if (!isTime(g.timestamp)) fail(`${at}.timestamp`, 'must be epoch milliseconds (a finite number from 0)', g.timestamp);
  for (const key of ['requestId', 'ruleId', 'ruleName', 'category', 'parameter', 'value', 'trigger'] as const) {
    if (typeof g[key] !== 'string') fail(`${at}.${key}`, 'must be a string', g[key]);
  }
  for (const key of ['clientIp', 'userAgent', 'route', 'method'] as const) optionalString(g, key, at);
  if (typeof g.blocked !== 'boolean') fail(`${at}.blocked`, 'must be a boolean', g.blocked);
}

function checkDropped(d: unknown): void {
  if (!isObject(d)) fail('dropped', 'must be an object of counts', d);
  for (const key of ['metrics', 'spans', 'logs', 'security'] as const) {
    if (!Number.isSafeInteger(d[key]) || (d[key] as number) < 0) fail(`dropped.${key}`, 'must be a non-negative integer', d[key]);
  }
}

function checkArray(body: Obj, key: string, check: (item: unknown, at: string) => void): void {
  const list = body[key];
  if (!Array.isArray(list)) fail(key, 'must be an array', list);
  for (let i = 0; i < list.length; i++) check(list[i], `${key}[${i}]`);
}

function checkStrings(value: unknown, at: string): void {
  if (!Array.isArray(value)) fail(at, 'must be an array of strings', value);
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'string') fail(`${at}[${i}]`, 'must be a string', value[i]);
}

function optionalString(o: Obj, key: string, at: string): void {
  if (!absent(o, key) && typeof o[key] !== 'string') fail(`${at}.${key}`, 'must be a string when present', o[key]);
}

/** Absent or null; a null member is deleted so that later code only meets absent ones. */
function absent(o: Obj, key: string): boolean {
  const v = o[key];
  if (v === null) delete o[key];
  return v === undefined || v === null;
}

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= MAX_MS;
}

function isMicros(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
}

function fail(field: string, expectation: string, got: unknown): never {
  throw new InvalidRequestContentException(`Invalid telemetry batch: ${field} ${expectation}, got ${describe(got)}.`);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 60 ? text.slice(0, 57) + '...' : text}`;
}
