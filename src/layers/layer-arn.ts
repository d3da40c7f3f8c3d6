/**
 * Layer names and ARNs as callers give them, with the patterns and messages of Lambda's
 * API model (botocore lambda/2015-03-31/service-2.json: LayerName, LayerVersionArn,
 * LayerList), and the ARNs Nimbus reports.
 */
import { InvalidParameterValueException, validationError } from '../errors/platform-errors.ts';
import type { LayerVersionRef } from './types.ts';

/** LayerName: a name or a layer ARN (without version), 1 to 140 characters. */
const layerNamePattern = /^(?:arn:[a-zA-Z0-9-]+:lambda:([a-zA-Z0-9-]+):(\d{12}):layer:([a-zA-Z0-9-_]+)|([a-zA-Z0-9-_]+))$/;
const layerNamePatternText = '(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+';

/** LayerVersionArn, as GetLayerVersionByArn's `Arn` takes it. */
const layerVersionArnPattern = /^arn:(?:aws[a-zA-Z-]*)?:lambda:([a-z]{2}(?:(?:-gov)|(?:-iso(?:b?)))?-[a-z]+-\d):(\d{12}):layer:([a-zA-Z0-9-_]+):([0-9]+)$/;
const layerVersionArnPatternText = 'arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+';

/** An element of a function's `Layers` (LayerList), current model. */
const functionLayerPattern =
  /^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:((?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d):(\d{12}):layer:([a-zA-Z0-9-_]+):([0-9]+)|arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)$/;
const functionLayerPatternText =
  '(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)';

export const maxLayerNameLength = 140;
export const maxFunctionLayerArnLength = 2048;

/** A LayerName path parameter: the name, and the region and account when it was an ARN. */
export interface LayerNameRef {
  layerName: string;
  region?: string;
  accountId?: string;
}

export function parseLayerName(raw: string): LayerNameRef {
  if (raw.length < 1) throw validationError(raw, 'layerName', 'Member must have length greater than or equal to 1');
  if (raw.length > maxLayerNameLength) {
    throw validationError(raw, 'layerName', `Member must have length less than or equal to ${maxLayerNameLength}`);
  }
  const m = layerNamePattern.exec(raw);
  if (!m) throw validationError(raw, 'layerName', `Member must satisfy regular expression pattern: ${layerNamePatternText}`);
  const [, region, accountId, arnName, plainName] = m;
  return plainName !== undefined ? { layerName: plainName } : { layerName: arnName!, region, accountId };
}

/** GetLayerVersionByArn's `Arn`. */
export function parseLayerVersionArn(raw: string): LayerVersionRef {
  if (raw.length < 1) throw validationError(raw, 'arn', 'Member must have length greater than or equal to 1');
  if (raw.length > maxLayerNameLength) throw validationError(raw, 'arn', `Member must have length less than or equal to ${maxLayerNameLength}`);
  const m = layerVersionArnPattern.exec(raw);
  if (!m) throw validationError(raw, 'arn', `Member must satisfy regular expression pattern: ${layerVersionArnPatternText}`);
  return { region: m[1]!, accountId: m[2]!, layerName: m[3]!, version: Number(m[4]) };
}

/**
 * One element of a function's `Layers`, already checked against the model's pattern.
 * Returns undefined for the `awslayer` form (AWS-managed layers, which Nimbus has none of).
 */
export function parseFunctionLayerArn(arn: string): LayerVersionRef | undefined {
  const m = functionLayerPattern.exec(arn);
  if (!m || m[1] === undefined) return undefined;
  return { region: m[1], accountId: m[2]!, layerName: m[3]!, version: Number(m[4]) };
}

/**
 * Checks a function's `Layers` against the model (a list of strings, each 1 to 2048
 * characters matching the pattern), as Lambda's front end does before anything else.
 */
export function checkFunctionLayerList(value: unknown): string[] {
  if (!Array.isArray(value)) {
    throw new InvalidParameterValueException(`Layers must be a list of layer version ARNs, got ${JSON.stringify(value)}.`);
  }
  const ok = value.every(
    (v) => typeof v === 'string' && v.length >= 1 && v.length <= maxFunctionLayerArnLength && functionLayerPattern.test(v),
  );
  if (!ok) {
    const shown = `[${value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}]`;
    throw validationError(
      shown,
      'layers',
      'Member must satisfy constraint: [' +
        `Member must have length less than or equal to ${maxFunctionLayerArnLength}, ` +
        'Member must have length greater than or equal to 1, ' +
        `Member must satisfy regular expression pattern: ${functionLayerPatternText}, ` +
        'Member must not be null]',
    );
  }
  return value as string[];
}

/**
 * A VersionNumber path parameter. Lambda answers a number below 1 with
 * InvalidParameterValueException; anything that is not a number fails the model.
 */
export function parseVersionNumber(raw: string): number {
  if (!/^-?\d{1,19}$/.test(raw)) throw validationError(raw, 'versionNumber', 'Member must be a whole number (a layer version)');
  const version = Number(raw);
  if (version < 1) throw new InvalidParameterValueException('Layer Version Cannot be less than 1');
  return version;
}

export function layerArn(region: string, accountId: string, layerName: string): string {
  return `arn:aws:lambda:${region}:${accountId}:layer:${layerName}`;
}

export function layerVersionArn(region: string, accountId: string, layerName: string, version: number): string {
  return `${layerArn(region, accountId, layerName)}:${version}`;
}
