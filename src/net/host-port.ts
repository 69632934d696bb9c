/** A host (name, IPv4 or IPv6 literal; empty: every interface) and a port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** An IPv6 literal in brackets, as URLs and `host:port` strings need it. */
export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** `host:port`, `[v6]:port`. */
export function formatHostPort(host: string, port: number | string): string {
  return `${formatHost(host)}:${port}`;
}
