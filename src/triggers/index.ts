export * from './wiring.ts';
export type * from './types.ts';
