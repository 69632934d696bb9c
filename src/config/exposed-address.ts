import { ConfigError } from './parse-values.js';

// The instance URL NetBird's relay v0.77.1 derives from NB_EXPOSED_ADDRESS:
// a bare address gets rels:// (TLS on) or rel:// (TLS off), a URL is kept as
// given (scheme lower-cased), rel:// is refused while TLS is on. The forms
// accepted here are exactly those whose URL NetBird returns unchanged; the few
// it would re-encode or that no client can dial are refused (README, Settings
// audit). Clients dial <scheme>://<host>/relay whatever the path, so the
// listener needs no per-path route.

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s;
// Host characters Go's URL parser accepts unescaped (ASCII only: it would
// re-encode others in the URL it returns).
const REG_NAME = /^[A-Za-z0-9\-._~!$&'()*+,;=]+$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;
// Path characters Go returns unchanged; % must start a valid escape.
const PATH = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/[\]]|%[0-9A-Fa-f]{2})*$/;

export function instanceUrl(setting: string, exposedAddress: string, { tls }: { tls: boolean }): string {
  const fail = (why: string): never => {
    throw new ConfigError(`${setting}: ${why}, got "${exposedAddress}"`);
  };
  const parts = exposedAddress.split('://').length;
  if (parts > 2) fail('more than one scheme');
  const address = parts === 1 ? `${tls ? 'rels' : 'rel'}://${exposedAddress}` : exposedAddress;
  // eslint-disable-next-line no-control-regex -- control bytes are what is refused
  if (/[\u0000-\u001f\u007f]/.test(address)) fail('control characters are not allowed');

  const match = SCHEME.exec(address);
  if (!match) return fail('expected host:port, rel://host:port or rels://host:port');
  const scheme = (match[1] as string).toLowerCase();
  if (scheme !== 'rel' && scheme !== 'rels') fail(`scheme "${match[1]}" is not rel or rels`);
  if (tls && scheme === 'rel') fail('rel:// (no TLS) while TLS is on (NB_TLS_CERT_FILE); use rels://');

  const rest = match[2] as string;
  const queryAt = rest.indexOf('?');
  const beforeQuery = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const slash = beforeQuery.indexOf('/');
  const authority = slash === -1 ? beforeQuery : beforeQuery.slice(0, slash);
  const path = slash === -1 ? '' : beforeQuery.slice(slash);
  if (authority.includes('@')) fail('credentials in the address are not supported');
  const portAt = authority.lastIndexOf(':');
  const bracketEnd = authority.lastIndexOf(']');
  const hasPort = portAt > bracketEnd;
  const host = hasPort ? authority.slice(0, portAt) : authority;
  const port = hasPort ? authority.slice(portAt + 1) : '';
  if (host === '') fail('no host');
  if (!REG_NAME.test(host) && !IPV6.test(host)) fail(`"${host}" is not a host name or IP address`);
  if (!/^\d*$/.test(port)) fail(`"${port}" is not a port`);
  if (!PATH.test(path)) fail('the path has characters that need escaping');
  return `${scheme}://${rest}`;
}
