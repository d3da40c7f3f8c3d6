export * from './resolved-config.ts';
