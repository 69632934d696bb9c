import { RelayClientError } from './relay-client-error.js';

/** The path NetBird clients always connect to, whatever the relay address says. */
export const RELAY_PATH = '/relay';

/**
 * Turns a relay address (rel://host:port, rels://host:port) into the
 * WebSocket URL to dial: rel becomes ws, rels becomes wss, the path is /relay.
 */
export function relayWebSocketUrl(relayUrl: string): string {
  let parsed: URL;
  try {
    parsed = new URL(relayUrl);
  } catch (cause) {
    throw new RelayClientError('invalid_url', `relay URL "${relayUrl}" is not a URL`, { cause });
  }
  const scheme = { 'rel:': 'ws:', 'rels:': 'wss:' }[parsed.protocol];
  if (scheme === undefined || parsed.host === '') {
    throw new RelayClientError(
      'invalid_url',
      `relay URL "${relayUrl}": expected rel://host:port or rels://host:port`,
    );
  }
  return `${scheme}//${parsed.host}${RELAY_PATH}`;
}
