/**
 * The wire shape of a function (Lambda's FunctionConfiguration), made from the internal
 * record at the edge. Field names and nesting follow the Lambda API model exactly.
 */
import type { FunctionRecord } from '../functions/types.ts';

export function functionConfiguration(record: FunctionRecord, arn: string): Record<string, unknown> {
  return {
    FunctionName: record.functionName,
    FunctionArn: arn,
    Runtime: record.runtime,
    Role: record.role,
    Handler: record.handler,
    CodeSize: record.codeSizeBytes,
    Description: record.description,
    Timeout: record.timeoutSeconds,
    MemorySize: record.memoryMb,
    LastModified: record.lastModified,
    CodeSha256: record.codeSha256,
    Version: record.version,
    Environment: { Variables: record.environment },
    TracingConfig: { Mode: record.tracingMode },
    ...(record.deadLetterTargetArn ? { DeadLetterConfig: { TargetArn: record.deadLetterTargetArn } } : {}),
    RevisionId: record.revisionId,
    ...(record.layers.length > 0
      ? { Layers: record.layers.map((Arn) => ({ Arn, ...(record.layerCodeSizes?.[Arn] !== undefined ? { CodeSize: record.layerCodeSizes[Arn] } : {}) })) }
      : {}),
    State: record.state,
    LastUpdateStatus: record.lastUpdateStatus,
    PackageType: 'Zip',
    Architectures: record.architectures,
    EphemeralStorage: { Size: record.ephemeralStorageMb },
    SnapStart: { ApplyOn: 'None', OptimizationStatus: 'Off' },
    LoggingConfig: {
      LogFormat: record.loggingConfig.logFormat,
      LogGroup: record.loggingConfig.logGroup,
      ...(record.loggingConfig.applicationLogLevel ? { ApplicationLogLevel: record.loggingConfig.applicationLogLevel } : {}),
      ...(record.loggingConfig.systemLogLevel ? { SystemLogLevel: record.loggingConfig.systemLogLevel } : {}),
    },
  };
}
