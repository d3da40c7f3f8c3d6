/**
 * The function domain as Nimbus keeps it internally (camelCase, units in names).
 * The wire shape (FunctionConfiguration in PascalCase) is made at the API edge
 * by src/api/function-shape.ts; nothing else depends on it.
 */

export type LogFormat = 'Text' | 'JSON';

export interface LoggingConfig {
  logFormat: LogFormat;
  logGroup: string;
  applicationLogLevel?: string;
  systemLogLevel?: string;
}

/** Lambda's `State`: functions are usable once Active. */
export type FunctionState = 'Pending' | 'Active' | 'Inactive' | 'Failed';
export type LastUpdateStatus = 'Successful' | 'Failed' | 'InProgress';

export interface FunctionRecord {
  functionName: string;
  /** `$LATEST` or a published version number. */
  version: string;
  runtime: string;
  handler: string;
  role: string;
  description: string;
  timeoutSeconds: number;
  memoryMb: number;
  ephemeralStorageMb: number;
  environment: Record<string, string>;
  architectures: string[];
  /** base64 of the SHA-256 of the deployment zip, as AWS reports CodeSha256. */
  codeSha256: string;
  codeSizeBytes: number;
  /** `2019-11-14T22:18:39.011+0000` */
  lastModified: string;
  revisionId: string;
  state: FunctionState;
  lastUpdateStatus: LastUpdateStatus;
  loggingConfig: LoggingConfig;
  tracingMode: 'PassThrough' | 'Active';
  layers: string[];
  /** CodeSize (zip bytes) of each of `layers`, by layer version ARN (`Layers[].CodeSize`). */
  layerCodeSizes?: Record<string, number>;
  tags: Record<string, string>;
  /** DeadLetterConfig.TargetArn: failed async events go there (a Nimbus built-in queue). */
  deadLetterTargetArn?: string;
  /**
   * Lambda Managed Instances: environments serve several invokes at once
   * (CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig).
   */
  managedInstances?: { capacityProviderArn: string; maxConcurrency: number };
  /** Epoch ms of creation, for stable listing order. */
  createdAtMs: number;
}
