export * from './hmac-token.js';
