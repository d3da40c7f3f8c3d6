/**
 * The artifact seam: deployment zips and layer zips, content-addressed by SHA-256.
 * The embedded default keeps files in the data dir; a cluster would use an
 * S3-compatible object store behind the same interface.
 */

export interface CodeArtifact {
  /** base64 of the SHA-256 digest of the zip bytes (AWS's CodeSha256). */
  sha256Base64: string;
  /** hex of the same digest; used for file names (base64 holds '/'). */
  sha256Hex: string;
  /** Size of the zip in bytes (AWS's CodeSize). */
  zipSizeBytes: number;
  /** Sum of the uncompressed sizes of the entries. */
  unzippedSizeBytes: number;
}

export interface ArtifactLimits {
  /** Lambda: 50 MB zipped upload (52,428,800 bytes). */
  maxZipBytes: number;
  /** Lambda: 250 MB unzipped (262,144,000 bytes). */
  maxUnzippedBytes: number;
  /** Refuse more entries than this (zip bombs made of many tiny files). */
  maxEntries: number;
}

export const lambdaArtifactLimits: ArtifactLimits = Object.freeze({
  maxZipBytes: 50 * 1024 * 1024,
  maxUnzippedBytes: 250 * 1024 * 1024,
  maxEntries: 100_000,
});

export interface ArtifactStore {
  /**
   * Validates a zip (size limits, corrupt archives, entries escaping the root, symlinks
   * pointing outside, zip bombs), stores it under its digest and extracts it once.
   * Storing the same bytes twice is cheap and returns the same artifact.
   * Throws InvalidParameterValueException (or RequestTooLargeException for an oversized
   * upload) and writes nothing outside the data dir, nothing half-extracted.
   */
  putZip(zip: Buffer): Promise<CodeArtifact>;
  /**
   * Path of the extracted, read-only tree for a digest (hex). Extracts again from the
   * stored zip if the tree is missing. Throws ResourceNotFoundException if unknown.
   */
  codeDir(sha256Hex: string): Promise<string>;
  /** The stored zip bytes (GetFunction's Code.Location serves them). */
  readZip(sha256Hex: string): Promise<Buffer>;
}
