export * from './peer-registry.js';
export * from './memory-registry.js';
