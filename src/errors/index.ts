export * from './platform-errors.ts';
export * from './runtime-error-types.ts';
