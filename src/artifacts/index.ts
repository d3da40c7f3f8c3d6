export type { ArtifactLimits, ArtifactStore, CodeArtifact } from './types.ts';
export { lambdaArtifactLimits } from './types.ts';
export { FileArtifactStore, type FileArtifactStoreOptions } from './file-artifact-store.ts';
export {
  couldNotUnzipMessage,
  extractZip,
  normalizeEntryPath,
  sha256Of,
  validateAndMeasureZip,
  type ZipMeasurement,
} from './zip-intake.ts';
