import type { Logger } from 'pino';
import { MAX_MESSAGE_SIZE, TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import type { PeerKey } from '../protocol/peer-id.js';
import type { Clock } from '../time/clock.js';
import type { PeerIdentity } from './peer-identity.js';
import type { RelayAuth } from './relay-auth.js';
import type { RelayClientError } from './relay-client-error.js';

/** NetBird's client timings; every one may be shortened for tests. */
export const CLIENT_DEFAULTS = {
  connectTimeoutMs: 30_000,
  authTimeoutMs: 8_000,
  healthCheckTimeoutMs: 35_000,
  openTimeoutMs: 30_000,
  earlyMessageTtlMs: 5_000,
  earlyMessageCapacity: 10_000,
} as const;

/** Largest payload one transport message can carry. */
export const MAX_TRANSPORT_PAYLOAD = MAX_MESSAGE_SIZE - TRANSPORT_HEADER_SIZE;

export interface RelayClientOptions {
  /** rel://host:port or rels://host:port */
  url: string;
  /** This client's own identity (identifier string or 36-byte peer ID). */
  peer: PeerIdentity;
  auth: RelayAuth;
  connectTimeoutMs?: number;
  /** How long to wait for the auth response after sending auth. */
  authTimeoutMs?: number;
  /** A server that sends no health check for this long is dropped. */
  healthCheckTimeoutMs?: number;
  /** Default wait for a peer to come online in openConn. */
  openTimeoutMs?: number;
  earlyMessageTtlMs?: number;
  earlyMessageCapacity?: number;
  /** TLS settings for rels:// (e.g. a test CA). */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  clock?: Clock;
  logger?: Logger;
}

export interface OpenConnOptions {
  /** How long to wait for the peer to be online (default 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type RelayClientState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface RelayClientEvents {
  /** The session ended; `error` says why, undefined when close() was called. */
  disconnected: [error: RelayClientError | undefined];
  /** A peer with no open connection sent a message; it is kept briefly for a later openConn. */
  earlyMessage: [peer: PeerKey];
}
