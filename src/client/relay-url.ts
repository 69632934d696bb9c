import { RelayClientError } from './relay-client-error.js';

/** The path NetBird clients always connect to, whatever the relay address says. */
export const RELAY_PATH = '/relay';

/**
 * Turns a relay address (rel://host[:port][/path][?query], rels://…) into the
 * WebSocket URL to dial, as NetBird's client does: rel becomes ws, rels
 * becomes wss, any path is replaced by /relay and the query is kept. So an
 * exposed address with a path (NB_EXPOSED_ADDRESS) is dialed like NetBird dials it.
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
      `relay URL "${relayUrl}": expected rel://host[:port][/path] or rels://host[:port][/path]`,
    );
  }
  return `${scheme}//${parsed.host}${RELAY_PATH}${parsed.search}`;
}
