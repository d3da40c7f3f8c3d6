/**
 * PublishLayerVersion's request body, checked with the limits and messages of Lambda's API
 * model: range, length and enum violations are one ValidationException listing each of
 * them ("2 validation errors detected: ...; ..."); Nimbus's own limits (zip content only)
 * are InvalidParameterValueException.
 */
import {
  InvalidParameterValueException,
  ValidationException,
} from '../errors/platform-errors.ts';
import { couldNotUnzipMessage } from '../artifacts/zip-intake.ts';
import { listRuntimes, lookupRuntime } from '../runtimes/catalog.ts';

export const layerLimits = Object.freeze({
  compatibleRuntimes: 15,
  compatibleArchitectures: 2,
  descriptionLength: 256,
  licenseInfoLength: 512,
});

export const architectures: readonly string[] = Object.freeze(['x86_64', 'arm64']);

/** What PublishLayerVersion stores, before the zip is taken in. */
export interface PublishInput {
  zip: Buffer;
  description: string;
  compatibleRuntimes: string[];
  compatibleArchitectures: string[];
  licenseInfo?: string;
}

/** Lambda's model error listing several violations at once. */
export function modelViolations(violations: readonly string[]): ValidationException {
  const n = violations.length;
  return new ValidationException(`${n} validation error${n > 1 ? 's' : ''} detected: ${violations.join('; ')}`);
}

/** `[nodejs24.x, python3.14, ...]`: the Runtime enum as the model lists it in messages. */
export function runtimeEnumText(): string {
  return `[${listRuntimes().map((r) => r.id).join(', ')}]`;
}

/** The `CompatibleRuntime` / `CompatibleArchitecture` filters of the List operations. */
export function checkListFilters(runtime: string | null, architecture: string | null): { compatibleRuntime?: string; compatibleArchitecture?: string } {
  const violations: string[] = [];
  if (runtime !== null && lookupRuntime(runtime) === undefined) {
    violations.push(`Value '${runtime}' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set: ${runtimeEnumText()}`);
  }
  if (architecture !== null && !architectures.includes(architecture)) {
    violations.push(`Value '${architecture}' at 'compatibleArchitecture' failed to satisfy constraint: Member must satisfy enum value set: [x86_64, arm64]`);
  }
  if (violations.length > 0) throw modelViolations(violations);
  return {
    ...(runtime !== null ? { compatibleRuntime: runtime } : {}),
    ...(architecture !== null ? { compatibleArchitecture: architecture } : {}),
  };
}

export function checkPublishInput(body: Record<string, unknown>): PublishInput {
  const violations: string[] = [];
  const compatibleRuntimes = stringList(body.CompatibleRuntimes, 'CompatibleRuntimes');
  if (compatibleRuntimes.length > layerLimits.compatibleRuntimes) {
    violations.push(
      `Value '${listText(compatibleRuntimes)}' at 'compatibleRuntimes' failed to satisfy constraint: Member must have length less than or equal to ${layerLimits.compatibleRuntimes}`,
    );
  }
  if (compatibleRuntimes.some((id) => lookupRuntime(id) === undefined)) {
    violations.push(
      `Value '${listText(compatibleRuntimes)}' at 'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value set: ${runtimeEnumText()}`,
    );
  }
  const compatibleArchitectures = stringList(body.CompatibleArchitectures, 'CompatibleArchitectures');
  if (compatibleArchitectures.length > layerLimits.compatibleArchitectures) {
    violations.push(
      `Value '${listText(compatibleArchitectures)}' at 'compatibleArchitectures' failed to satisfy constraint: Member must have length less than or equal to ${layerLimits.compatibleArchitectures}`,
    );
  }
  if (compatibleArchitectures.some((a) => !architectures.includes(a))) {
    violations.push(
      `Value '${listText(compatibleArchitectures)}' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]`,
    );
  }
  const description = optionalString(body.Description, 'Description') ?? '';
  if (description.length > layerLimits.descriptionLength) {
    violations.push(`Value '${description}' at 'description' failed to satisfy constraint: Member must have length less than or equal to ${layerLimits.descriptionLength}`);
  }
  const licenseInfo = optionalString(body.LicenseInfo, 'LicenseInfo');
  if (licenseInfo !== undefined && licenseInfo.length > layerLimits.licenseInfoLength) {
    violations.push(`Value '${licenseInfo}' at 'licenseInfo' failed to satisfy constraint: Member must have length less than or equal to ${layerLimits.licenseInfoLength}`);
  }
  if (body.Content === undefined || body.Content === null) {
    violations.push("Value null at 'content' failed to satisfy constraint: Member must not be null");
  }
  if (violations.length > 0) throw modelViolations(violations);
  return {
    zip: zipFromContent(body.Content),
    description,
    compatibleRuntimes,
    compatibleArchitectures,
    ...(licenseInfo !== undefined ? { licenseInfo } : {}),
  };
}

function zipFromContent(content: unknown): Buffer {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new InvalidParameterValueException('Content must be an object holding ZipFile: the .zip file archive, base64-encoded.');
  }
  const c = content as Record<string, unknown>;
  if (c.S3Bucket !== undefined || c.S3Key !== undefined || c.S3ObjectVersion !== undefined) {
    throw new InvalidParameterValueException(
      'Nimbus takes layer content as a .zip file archive in Content.ZipFile; S3 locations (S3Bucket, S3Key, S3ObjectVersion) are not available locally.',
    );
  }
  const zip = c.ZipFile;
  if (typeof zip !== 'string' || zip.length === 0) {
    throw new InvalidParameterValueException('Content.ZipFile is required: the .zip file archive, base64-encoded.');
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(zip) || zip.length % 4 === 1) throw new InvalidParameterValueException(couldNotUnzipMessage);
  return Buffer.from(zip, 'base64');
}

function stringList(value: unknown, member: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new InvalidParameterValueException(`${member} must be a list of strings, got ${JSON.stringify(value)}.`);
  }
  return value as string[];
}

function optionalString(value: unknown, member: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new InvalidParameterValueException(`${member} must be a string, got ${JSON.stringify(value)}.`);
  return value;
}

function listText(values: readonly string[]): string {
  return `[${values.join(', ')}]`;
}
