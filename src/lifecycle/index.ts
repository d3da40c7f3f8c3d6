export * from './state-machine.ts';
