export type * from './types.ts';
export { Environment, type InitOutcome, type EnvironmentState } from './environment.ts';
export { createSandbox, type SandboxSupervisor, type SandboxKind } from './sandbox.ts';
export { reservedVariableNames } from './lambda-env-vars.ts';
export { maxRuntimeResponseBytes } from './runtime-api-server.ts';
