export * from './types.ts';
export { assertRuntimeUsable, listRuntimes, lookupRuntime, runtimeCatalog, runtimePhase } from './catalog.ts';
export type { RuntimeCatalog, RuntimePhase } from './catalog.ts';
export { NodeProvisioner } from './node-provisioner.ts';
export type { NodeProvisionerOptions, ProvisionedNode } from './node-provisioner.ts';
export { LocalLauncherResolver, lambdaNodeFlags } from './launcher-resolver.ts';
export type { LocalLauncherResolverOptions } from './launcher-resolver.ts';
export { doctorReport } from './doctor.ts';
export type { DoctorEntry, DoctorOptions, DoctorResolver, DoctorStatus } from './doctor.ts';
