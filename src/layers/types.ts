/**
 * The layer domain as Nimbus keeps it internally (camelCase, units in names). The wire
 * shapes (LayerVersionContentOutput, LayerVersionsListItem, LayersListItem) are made at
 * the API edge by src/api/routes/layers.ts.
 *
 * Storage (through the Store seam's generic resources, no schema of its own):
 *
 *   kind `layer`                  key `<name>`                 {latestVersion}: the version
 *                                                              counter; never goes down, so
 *                                                              numbers are never reused
 *   kind `layer-version`          key `<name>/<0000000042>`    a live LayerVersionRecord
 *   kind `layer-version-deleted`  key `<name>/<0000000042>`    a deleted one (tombstone)
 *
 * DeleteLayerVersion moves the record to the tombstone kind instead of dropping it: as on
 * Lambda, a deleted version can no longer be read, listed or added to a function, but the
 * functions that already use it keep working. The tombstone holds the digest that their
 * /opt is built from, and the artifact store keeps zips (it has no delete), so the content
 * stays while any function refers to it. A tombstone is a few hundred bytes.
 */

export interface LayerVersionRecord {
  layerName: string;
  /** 1, 2, ...: never reused, even after a delete. */
  version: number;
  description: string;
  /** `2018-11-14T23:03:52.000+0000`, Lambda's CreatedDate format. */
  createdDate: string;
  /** Runtime identifiers from the catalog, as given (empty when none were given). */
  compatibleRuntimes: string[];
  /** `x86_64` / `arm64`, as given (empty when none were given). */
  compatibleArchitectures: string[];
  licenseInfo?: string;
  /** base64 of the SHA-256 of the zip, as AWS reports CodeSha256. */
  codeSha256: string;
  /** hex of the same digest: the artifact store's key and the merge's cache key. */
  codeSha256Hex: string;
  /** Size of the zip (Content.CodeSize and a function's Layers[].CodeSize). */
  codeSizeBytes: number;
  /** Sum of the uncompressed entry sizes, for Lambda's 250 MB limit on a function's layers. */
  unzippedSizeBytes: number;
  /** Epoch ms of deletion; only on tombstones. */
  deletedAtMs?: number;
}

/** The version counter of one layer name. */
export interface LayerCounterRecord {
  latestVersion: number;
}

/** A parsed layer version ARN: `arn:aws:lambda:<region>:<account>:layer:<name>:<version>`. */
export interface LayerVersionRef {
  region: string;
  accountId: string;
  layerName: string;
  version: number;
}

/** One page of a listing, with the marker for the next one. */
export interface LayerPage<T> {
  items: T[];
  nextMarker?: string;
}

/** A layer and its newest version that matches the filters (ListLayers). */
export interface LayerSummary {
  layerName: string;
  latestMatchingVersion: LayerVersionRecord;
}

/** Filters of ListLayers and ListLayerVersions. */
export interface LayerFilter {
  compatibleRuntime?: string;
  compatibleArchitecture?: string;
}

/** One layer's extracted tree, as merged into a function's /opt. */
export interface LayerTree {
  /** hex SHA-256 of the layer zip. */
  sha256Hex: string;
  /** Host path of the extracted, read-only tree. */
  dir: string;
}

/**
 * Builds the /opt view of several layers. The embedded default links files from the
 * extracted trees into one directory under the data dir (merged-opt.ts); a cluster node
 * would do the same on its own disk.
 */
export interface OptMerger {
  /**
   * Host path of a read-only tree holding the layers in order, later ones overriding
   * earlier ones file by file. Built once per ordered list of digests.
   */
  merge(trees: readonly LayerTree[]): Promise<string>;
}
