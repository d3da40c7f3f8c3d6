/**
 * DogStatsD datagram parser. One datagram holds lines separated by "\n", each
 * `name:value[:value...]|type[|@rate][|#tag,tag:v][|T<unix seconds>][|c:<container>]`.
 *
 * Bad lines are reported, never thrown: a client library bug must not take the intake down,
 * and the good lines of the same datagram are still kept.
 */
import { isUtf8 } from 'node:buffer';

export type DogStatsDType = 'c' | 'g' | 'd' | 'h' | 'ms' | 's';

export interface DogStatsDSample {
  name: string;
  type: DogStatsDType;
  /** Numeric values of every type but sets; a packed line `a:1:2|d` gives several. */
  values: number[];
  /** Gauges only, present when some value had a leading sign: that value is a change to the current gauge. */
  relative?: boolean[];
  /** Sets only: the member, kept as written. */
  setValue?: string;
  /** In (0, 1]; 1 when absent. */
  sampleRate: number;
  tags: string[];
  /** From `|T<unix seconds>`, in milliseconds. */
  timestampMs?: number;
  container?: string;
}

export interface DogStatsDParseResult {
  samples: DogStatsDSample[];
  errors: string[];
}

const TYPES = new Set<string>(['c', 'g', 'd', 'h', 'ms', 's']);
// Strict decimal: Number() would also take '', ' ', '0x1f' and 'Infinity'.
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Error messages quote at most this much of a bad line, so a huge garbage datagram does not become a huge log line. */
const QUOTE_LIMIT = 80;

export function parseDogStatsD(packet: Buffer | string): DogStatsDParseResult {
  const result: DogStatsDParseResult = { samples: [], errors: [] };
  if (typeof packet === 'string') {
    parseLines(packet, result);
  } else if (isUtf8(packet)) {
    parseLines(packet.toString('utf8'), result);
  } else {
    // Rare: find which lines are broken, so the valid ones of the datagram are still kept.
    let start = 0;
    while (start <= packet.length) {
      let end = packet.indexOf(0x0a, start);
      if (end === -1) end = packet.length;
      const line = packet.subarray(start, end);
      if (isUtf8(line)) parseLines(line.toString('utf8'), result);
      else result.errors.push(`invalid UTF-8 in line of ${line.length} bytes`);
      start = end + 1;
    }
  }
  return result;
}

function parseLines(text: string, result: DogStatsDParseResult): void {
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    start = end + 1;
    if (line.length === 0) continue;
    // Events and service checks are valid DogStatsD that the agent does not forward.
    if (line.startsWith('_e{') || line.startsWith('_sc|')) continue;
    const parsed = parseLine(line);
    if (typeof parsed === 'string') result.errors.push(`${parsed}: ${quote(line)}`);
    else result.samples.push(parsed);
  }
}

/** A sample, or the reason the line is malformed. */
function parseLine(line: string): DogStatsDSample | string {
  const fields = line.split('|');
  if (fields.length < 2) return 'no metric type';
  const head = fields[0];
  const colon = head.indexOf(':');
  if (colon === -1) return 'no value';
  const name = head.slice(0, colon).trim();
  if (name.length === 0) return 'empty metric name';
  const type = fields[1];
  if (type.length === 0) return 'no metric type';
  if (!TYPES.has(type)) return `unknown metric type "${type.slice(0, 8)}"`;
  const rawValue = head.slice(colon + 1);
  if (rawValue.length === 0) return 'empty value';

  const sample: DogStatsDSample = { name, type: type as DogStatsDType, values: [], sampleRate: 1, tags: [] };
  if (type === 's') {
    sample.setValue = rawValue;
  } else {
    const error = parseValues(rawValue, sample);
    if (error) return error;
  }

  for (let i = 2; i < fields.length; i++) {
    const field = fields[i];
    if (field.length === 0) continue;
    const marker = field[0];
    if (marker === '@') {
      const rate = NUMBER.test(field.slice(1)) ? Number(field.slice(1)) : NaN;
      if (!(rate > 0 && rate <= 1)) return `bad sample rate "${field.slice(0, 16)}"`;
      sample.sampleRate = rate;
    } else if (marker === '#') {
      for (const tag of field.slice(1).split(',')) {
        const trimmed = tag.trim();
        if (trimmed.length > 0) sample.tags.push(trimmed);
      }
    } else if (marker === 'T') {
      const seconds = Number(field.slice(1));
      if (!/^\d+$/.test(field.slice(1)) || !Number.isSafeInteger(seconds)) return `bad timestamp "${field.slice(0, 24)}"`;
      sample.timestampMs = seconds * 1000;
    } else if (field.startsWith('c:')) {
      sample.container = field.slice(2);
    }
    // Other fields (`e:` external data, future extensions) are ignored, as the Datadog agent does.
  }
  return sample;
}

function parseValues(rawValue: string, sample: DogStatsDSample): string | undefined {
  const parts = rawValue.split(':');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (!NUMBER.test(part)) return `bad value "${part.slice(0, 24)}"`;
    const value = Number(part);
    if (!Number.isFinite(value)) return `bad value "${part.slice(0, 24)}"`;
    sample.values.push(value);
    if (sample.type === 'g' && (part[0] === '+' || part[0] === '-')) {
      sample.relative ??= new Array<boolean>(parts.length).fill(false);
      sample.relative[i] = true;
    }
  }
  return undefined;
}

function quote(line: string): string {
  return line.length <= QUOTE_LIMIT ? JSON.stringify(line) : `${JSON.stringify(line.slice(0, QUOTE_LIMIT))}...`;
}
