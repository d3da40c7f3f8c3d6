export * from './invoker.ts';
