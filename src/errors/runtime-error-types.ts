/**
 * Error types a function invocation can end with, as Lambda reports them in the
 * invoke payload's `errorType`, in telemetry and in the REPORT line
 * (compare RIE's internal/lambda/fatalerror/fatalerror.go).
 */
export const RuntimeErrorType = {
  ExitError: 'Runtime.ExitError',
  OutOfMemory: 'Runtime.OutOfMemory',
  InvalidEntrypoint: 'Runtime.InvalidEntrypoint',
  HandlerNotFound: 'Runtime.HandlerNotFound',
  ImportModuleError: 'Runtime.ImportModuleError',
  UserCodeSyntaxError: 'Runtime.UserCodeSyntaxError',
  MalformedHandlerName: 'Runtime.MalformedHandlerName',
  Unknown: 'Runtime.Unknown',
  SandboxTimeout: 'Sandbox.Timedout',
  ResponseSizeTooLarge: 'Function.ResponseSizeTooLarge',
  ExtensionCrash: 'Extension.Crash',
  InitTimeout: 'Sandbox.Timedout',
} as const;

export type RuntimeErrorTypeName = (typeof RuntimeErrorType)[keyof typeof RuntimeErrorType];
