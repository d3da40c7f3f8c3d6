export * from './invoker.ts';
export * from './invocation-service.ts';
