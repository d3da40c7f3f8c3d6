/**
 * The layer domain's operations: PublishLayerVersion, GetLayerVersion(ByArn), ListLayers,
 * ListLayerVersions and DeleteLayerVersion, with Lambda's rules and messages; and the
 * LayerResolver the function domain calls for a function's `Layers` (checking them, and the
 * merged /opt its environments mount). Records live in the Store seam's generic resources
 * (see types.ts for the keys), zips in the Artifact seam, merged trees behind the OptMerger.
 */
import {
  InvalidParameterValueException,
  ResourceNotFoundException,
  ServiceException,
} from '../errors/platform-errors.ts';
import type { ArtifactStore } from '../artifacts/types.ts';
import type { ResourceStore } from '../store/types.ts';
import type { Clock } from '../clock/clock.ts';
import type { Logger } from '../logging/logger.ts';
import type { LayerResolver } from '../functions/function-service.ts';
import { lambdaTimestamp } from '../functions/arn.ts';
import {
  checkFunctionLayerList,
  layerArn,
  layerVersionArn,
  parseFunctionLayerArn,
  type LayerNameRef,
} from './layer-arn.ts';
import { checkPublishInput } from './publish-input.ts';
import type {
  LayerCounterRecord,
  LayerFilter,
  LayerPage,
  LayerSummary,
  LayerTree,
  LayerVersionRecord,
  LayerVersionRef,
  OptMerger,
} from './types.ts';

export interface LayerServiceOptions {
  store: ResourceStore;
  artifacts: ArtifactStore;
  merger: OptMerger;
  clock: Clock;
  logger: Logger;
  region: string;
  accountId: string;
  /** Lambda: a function's layers together at most 250 MB unzipped (262,144,000 bytes). */
  maxLayersUnzippedBytes?: number;
}

const KIND_COUNTER = 'layer';
const KIND_VERSION = 'layer-version';
const KIND_DELETED = 'layer-version-deleted';

/** Lambda's limit on a function's layers. */
export const maxLayersPerFunction = 5;
const lambdaMaxUnzippedBytes = 262_144_000;

/** Store keys sort as strings: ten digits keep versions in numeric order. */
function versionKey(layerName: string, version: number): string {
  return `${layerName}/${String(version).padStart(10, '0')}`;
}

export class LayerService implements LayerResolver {
  readonly #o: LayerServiceOptions;
  readonly #maxUnzippedBytes: number;
  /** Publishes of one layer name run one at a time, so version numbers are handed out in order. */
  readonly #publishing = new Map<string, Promise<unknown>>();
  /** Content of layer versions functions use, by version ARN. Content never changes. */
  readonly #contents = new Map<string, LayerVersionRecord>();

  constructor(options: LayerServiceOptions) {
    this.#o = options;
    this.#maxUnzippedBytes = options.maxLayersUnzippedBytes ?? lambdaMaxUnzippedBytes;
  }

  layerArn(layerName: string): string {
    return layerArn(this.#o.region, this.#o.accountId, layerName);
  }

  versionArn(record: { layerName: string; version: number }): string {
    return layerVersionArn(this.#o.region, this.#o.accountId, record.layerName, record.version);
  }

  /** PublishLayerVersion: validates, takes the zip in (limits, hostile zips), then numbers it. */
  async publish(ref: LayerNameRef, body: Record<string, unknown>): Promise<LayerVersionRecord> {
    const layerName = this.#localName(ref);
    const input = checkPublishInput(body);
    // Before a number is handed out: a refused zip stores nothing and uses no version.
    const artifact = await this.#o.artifacts.putZip(input.zip);
    return this.#serialized(layerName, async () => {
      const store = this.#o.store;
      const counter = await store.getResource<LayerCounterRecord>(KIND_COUNTER, layerName);
      let version = (counter?.latestVersion ?? 0) + 1;
      for (;;) {
        // The counter is written first: a crash after it skips a number, never reuses one.
        await store.putResource(KIND_COUNTER, layerName, { latestVersion: version } satisfies LayerCounterRecord);
        const now = this.#o.clock.now();
        const record: LayerVersionRecord = {
          layerName,
          version,
          description: input.description,
          createdDate: lambdaTimestamp(now),
          compatibleRuntimes: input.compatibleRuntimes,
          compatibleArchitectures: input.compatibleArchitectures,
          ...(input.licenseInfo !== undefined ? { licenseInfo: input.licenseInfo } : {}),
          codeSha256: artifact.sha256Base64,
          codeSha256Hex: artifact.sha256Hex,
          codeSizeBytes: artifact.zipSizeBytes,
          unzippedSizeBytes: artifact.unzippedSizeBytes,
        };
        const key = versionKey(layerName, version);
        const taken = (await store.getResource(KIND_DELETED, key)) !== undefined;
        if (!taken && (await store.putResource(KIND_VERSION, key, record, { ifAbsent: true }))) {
          this.#o.logger.info('layer version published', { layerName, version, codeSha256: record.codeSha256 });
          return record;
        }
        // Another process sharing the store took this number: take the next one.
        version++;
      }
    });
  }

  /** GetLayerVersion. */
  async get(ref: LayerNameRef, version: number): Promise<LayerVersionRecord> {
    const record = await this.#live(this.#localName(ref), version);
    if (!record) throw resourceNotFound();
    return record;
  }

  /** GetLayerVersionByArn. */
  async getByArn(ref: LayerVersionRef): Promise<LayerVersionRecord> {
    const layerName = this.#localName(ref);
    const record = await this.#live(layerName, ref.version);
    if (!record) throw resourceNotFound();
    return record;
  }

  /** ListLayers: each layer with its newest version that matches the filters, by name. */
  async listLayers(filter: LayerFilter, marker: string | undefined, maxItems: number): Promise<LayerPage<LayerSummary>> {
    const after = marker === undefined ? undefined : decodeMarker(marker, 'after', 'string');
    const newest = new Map<string, LayerVersionRecord>();
    for (const record of await this.#all(KIND_VERSION, '')) {
      if (!matches(record, filter)) continue;
      const seen = newest.get(record.layerName);
      if (!seen || record.version > seen.version) newest.set(record.layerName, record);
    }
    const names = [...newest.keys()].filter((name) => after === undefined || name > after).sort();
    const page = names.slice(0, maxItems);
    return {
      items: page.map((layerName) => ({ layerName, latestMatchingVersion: newest.get(layerName)! })),
      ...(names.length > maxItems ? { nextMarker: encodeMarker('after', page.at(-1)!) } : {}),
    };
  }

  /** ListLayerVersions: newest first. A layer with no versions lists none (no error, as on Lambda). */
  async listVersions(ref: LayerNameRef, filter: LayerFilter, marker: string | undefined, maxItems: number): Promise<LayerPage<LayerVersionRecord>> {
    const layerName = this.#localName(ref);
    const before = marker === undefined ? undefined : decodeMarker(marker, 'before', 'number');
    const versions = (await this.#all(KIND_VERSION, `${layerName}/`))
      .filter((record) => matches(record, filter) && (before === undefined || record.version < before))
      .sort((a, b) => b.version - a.version);
    const page = versions.slice(0, maxItems);
    return {
      items: page,
      ...(versions.length > maxItems ? { nextMarker: encodeMarker('before', page.at(-1)!.version) } : {}),
    };
  }

  /**
   * DeleteLayerVersion. Succeeds for a version that does not exist, as Lambda does. The
   * record becomes a tombstone so that functions using the version keep their /opt.
   */
  async delete(ref: LayerNameRef, version: number): Promise<void> {
    const layerName = this.#localName(ref);
    const key = versionKey(layerName, version);
    const record = await this.#o.store.getResource<LayerVersionRecord>(KIND_VERSION, key);
    if (!record) return;
    // Tombstone first: a crash in between leaves the version live, and a retry finishes.
    await this.#o.store.putResource(KIND_DELETED, key, { ...record, deletedAtMs: this.#o.clock.now().getTime() });
    await this.#o.store.deleteResource(KIND_VERSION, key);
    this.#o.logger.info('layer version deleted', { layerName, version });
  }

  // ---- LayerResolver: a function's Layers ------------------------------------------

  /**
   * Lambda's checks, in its order: the model (a list of version ARNs), at most 5, each an
   * existing version in this region, no two versions of one layer, and the layers together
   * within 250 MB unzipped. Lambda does not hold a function's runtime or architecture
   * against a layer's CompatibleRuntimes / CompatibleArchitectures (they only filter the
   * List operations), so neither does this.
   */
  async validate(value: unknown, _runtime: string, _architecture: string): Promise<string[]> {
    if (value === undefined || value === null) return [];
    const arns = checkFunctionLayerList(value);
    if (arns.length > maxLayersPerFunction) throw new InvalidParameterValueException('Cannot reference more than 5 layers.');
    const seen = new Map<string, string>();
    let unzippedBytes = 0;
    for (const arn of arns) {
      const ref = parseFunctionLayerArn(arn);
      if (ref !== undefined && ref.region !== this.#o.region) {
        throw new InvalidParameterValueException(
          `Layers are not in the same region as the function. Layers are expected to be in region ${this.#o.region}.`,
        );
      }
      const record = ref !== undefined && ref.accountId === this.#o.accountId ? await this.#live(ref.layerName, ref.version) : undefined;
      // The ARN must be the version's own (same partition, no leading zeros).
      if (!record || this.versionArn(record) !== arn) throw new InvalidParameterValueException(`Layer version ${arn} does not exist.`);
      const layer = arn.slice(0, arn.lastIndexOf(':'));
      const other = seen.get(layer);
      if (other !== undefined) {
        throw new InvalidParameterValueException(
          `Two different versions of the same layer are not allowed to be referenced in the same function. ${other} and ${arn} are versions of the same layer.`,
        );
      }
      seen.set(layer, arn);
      this.#contents.set(arn, record);
      unzippedBytes += record.unzippedSizeBytes;
    }
    if (unzippedBytes > this.#maxUnzippedBytes) {
      throw new InvalidParameterValueException(`Layers consume more than the available size of ${this.#maxUnzippedBytes} bytes`);
    }
    return [...arns];
  }

  /** CodeSize of each layer version, by ARN (a function's `Layers[].CodeSize`). */
  async codeSizes(layerVersionArns: string[]): Promise<Record<string, number>> {
    const sizes: Record<string, number> = {};
    for (const arn of layerVersionArns) sizes[arn] = (await this.#content(arn)).codeSizeBytes;
    return sizes;
  }

  /** The function's /opt: its layers merged in order. Deleted versions still resolve. */
  async mergedDir(layerVersionArns: string[]): Promise<string | undefined> {
    if (layerVersionArns.length === 0) return undefined;
    const trees: LayerTree[] = [];
    for (const arn of layerVersionArns) {
      const record = await this.#content(arn);
      trees.push({ sha256Hex: record.codeSha256Hex, dir: await this.#o.artifacts.codeDir(record.codeSha256Hex) });
    }
    return this.#o.merger.merge(trees);
  }

  // ---- internals ---------------------------------------------------------------------

  /** A version a function refers to, live or deleted. */
  async #content(arn: string): Promise<LayerVersionRecord> {
    const cached = this.#contents.get(arn);
    if (cached) return cached;
    const ref = parseFunctionLayerArn(arn);
    const key = ref === undefined ? undefined : versionKey(ref.layerName, ref.version);
    const record =
      key === undefined
        ? undefined
        : ((await this.#o.store.getResource<LayerVersionRecord>(KIND_VERSION, key)) ??
          (await this.#o.store.getResource<LayerVersionRecord>(KIND_DELETED, key)));
    if (!record) throw new ServiceException(`The content of layer version ${arn} is missing from the Nimbus store.`);
    this.#contents.set(arn, record);
    return record;
  }

  #live(layerName: string, version: number): Promise<LayerVersionRecord | undefined> {
    if (!Number.isSafeInteger(version) || version < 1) return Promise.resolve(undefined);
    return this.#o.store.getResource<LayerVersionRecord>(KIND_VERSION, versionKey(layerName, version));
  }

  async #all(kind: string, prefix: string): Promise<LayerVersionRecord[]> {
    const records: LayerVersionRecord[] = [];
    let marker: string | undefined;
    do {
      const page = await this.#o.store.listResources<LayerVersionRecord>(kind, { prefix, marker, maxItems: 1000 });
      for (const item of page.items) records.push(item.record);
      marker = page.nextMarker;
    } while (marker !== undefined);
    return records;
  }

  /** The layer name of a name or ARN; an ARN must be of this server's region and account. */
  #localName(ref: { layerName: string; region?: string; accountId?: string }): string {
    if (ref.accountId !== undefined && ref.accountId !== this.#o.accountId) {
      throw new InvalidParameterValueException(
        `The account ID in the layer ARN (${ref.accountId}) does not match this server's account (${this.#o.accountId}).`,
      );
    }
    if (ref.region !== undefined && ref.region !== this.#o.region) {
      throw new InvalidParameterValueException(`The region in the layer ARN (${ref.region}) does not match this server's region (${this.#o.region}).`);
    }
    return ref.layerName;
  }

  #serialized<T>(layerName: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#publishing.get(layerName) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#publishing.set(layerName, settled);
    void settled.then(() => {
      if (this.#publishing.get(layerName) === settled) this.#publishing.delete(layerName);
    });
    return run;
  }
}

function matches(record: LayerVersionRecord, filter: LayerFilter): boolean {
  if (filter.compatibleRuntime !== undefined && !record.compatibleRuntimes.includes(filter.compatibleRuntime)) return false;
  if (filter.compatibleArchitecture !== undefined && !record.compatibleArchitectures.includes(filter.compatibleArchitecture)) return false;
  return true;
}

function resourceNotFound(): ResourceNotFoundException {
  return new ResourceNotFoundException('The resource you requested does not exist.');
}

// Markers are opaque to callers: base64url of a small JSON object, so that a marker from
// elsewhere (or a hand-edited one) is refused instead of silently misread.
function encodeMarker(field: string, value: string | number): string {
  return Buffer.from(JSON.stringify({ [field]: value }), 'utf8').toString('base64url');
}

function decodeMarker(marker: string, field: 'after', type: 'string'): string;
function decodeMarker(marker: string, field: 'before', type: 'number'): number;
function decodeMarker(marker: string, field: string, type: 'string' | 'number'): string | number {
  let value: unknown;
  try {
    const decoded = Buffer.from(marker, 'base64url');
    if (marker !== '' && decoded.toString('base64url') === marker) value = (JSON.parse(decoded.toString('utf8')) as Record<string, unknown>)[field];
  } catch {
    value = undefined;
  }
  if (typeof value !== type) {
    throw new InvalidParameterValueException('Invalid Marker: pass the NextMarker returned by the previous call of the same List operation');
  }
  return value as string | number;
}
