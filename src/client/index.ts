export { RelayClient } from './relay-client.js';
export { CLIENT_DEFAULTS, MAX_TRANSPORT_PAYLOAD } from './relay-client-options.js';
export type {
  RelayClientOptions,
  RelayClientEvents,
  RelayClientState,
  OpenConnOptions,
} from './relay-client-options.js';
export { PeerConnection } from './peer-connection.js';
export type { PeerConnectionCloseReason, PeerConnectionEvents } from './peer-connection.js';
export { RelayClientError, isRelayClientError } from './relay-client-error.js';
export type { RelayClientErrorCode } from './relay-client-error.js';
export { RelayManager } from './relay-manager.js';
export type {
  RelayManagerOptions,
  RelayManagerEvents,
  ManagerOpenConnOptions,
  ForeignRelayCloseReason,
} from './relay-manager.js';
export { DEFAULT_MANAGER_TUNING, MIN_MTU, MAX_MTU, resolveManagerTuning } from './relay-manager-options.js';
export type { ManagerTuning } from './relay-manager-options.js';
export { DEFAULT_RECONNECT_BACKOFF, reconnectDelayMs } from './reconnect-backoff.js';
export type { ReconnectBackoffOptions } from './reconnect-backoff.js';
export type { RelayAuth } from './relay-auth.js';
export type { PeerIdentity } from './peer-identity.js';
export { peerIdOf } from './peer-identity.js';
export { relayWebSocketUrl } from './relay-url.js';
export type { Clock } from '../time/clock.js';
export { systemClock } from '../time/clock.js';
