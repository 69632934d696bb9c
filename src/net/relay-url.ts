/** A relay address as peers are given it: rel://host:port (plain) or rels://host:port (TLS), no path. */
const RELAY_URL = /^rels?:\/\/[^/\s]+$/;

export function isRelayUrl(url: string): boolean {
  return RELAY_URL.test(url);
}
