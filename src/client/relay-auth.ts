import { generateToken } from '../auth/hmac-token.js';

/**
 * How a client proves it may use the relay: a ready token (or a function that
 * returns a fresh one for every connect), or the shared secret to mint one.
 */
export type RelayAuth =
  { token: Buffer | (() => Buffer) } | { secret: string; /** default 24 h */ tokenTtlSeconds?: number };

const DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600;

/** A token for the next handshake; minted per connect so reconnects never reuse an expired one. */
export function tokenFor(auth: RelayAuth): Buffer {
  if ('secret' in auth) return generateToken(auth.secret, auth.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS);
  return typeof auth.token === 'function' ? auth.token() : auth.token;
}
