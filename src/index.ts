export * from './protocol/index.js';
export * from './auth/index.js';
export * from './registry/index.js';
export { startRelay, type RunningRelay } from './main.js';
export { loadConfig, type RelayConfig } from './config/relay-config.js';
export * from './client/index.js';
export * from './probe/index.js';
