export * from './constants.js';
export * from './peer-id.js';
export * from './codec.js';
