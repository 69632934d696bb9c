import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { formatHost, formatHostPort } from '../net/host-port.js';

/**
 * The address a connection is logged under. X-Real-Ip / X-Real-Port are
 * believed only from the configured trusted proxies; anyone else could forge them.
 */
export class ClientAddressResolver {
  readonly #trusted = new BlockList();
  readonly #any: boolean;

  /** `proxies`: IPs or CIDRs, already validated by the config layer. */
  constructor(proxies: readonly string[]) {
    this.#any = proxies.length > 0;
    for (const entry of proxies) {
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.#trusted.addAddress(address, family);
      else this.#trusted.addSubnet(address, Number(prefix), family);
    }
  }

  /** The client's IP alone (the key of per-IP limits). */
  clientIp(req: IncomingMessage): string {
    const direct = unmap(req.socket.remoteAddress ?? 'unknown');
    if (!this.#any || !this.#isTrusted(direct)) return direct;
    const realIp = headerValue(req.headers['x-real-ip']);
    return realIp && isIP(realIp) !== 0 ? unmap(realIp) : direct;
  }

  /** A TCP peer that is a trusted proxy speaks for many clients: it gets no per-IP TCP limit. */
  isTrustedProxy(address: string): boolean {
    return this.#any && this.#isTrusted(address);
  }

  resolve(req: IncomingMessage): string {
    const direct = req.socket.remoteAddress ?? 'unknown';
    const port = req.socket.remotePort;
    if (!this.#any || !this.#isTrusted(direct)) return formatAddress(direct, port);
    const realIp = headerValue(req.headers['x-real-ip']);
    if (!realIp || isIP(realIp) === 0) return formatAddress(direct, port);
    const realPort = Number(headerValue(req.headers['x-real-port']));
    return formatAddress(
      realIp,
      Number.isInteger(realPort) && realPort > 0 && realPort < 65536 ? realPort : port,
    );
  }

  #isTrusted(address: string): boolean {
    const unmapped = address.startsWith('::ffff:') ? address.slice(7) : address;
    const family = isIP(unmapped) === 6 ? 'ipv6' : 'ipv4';
    return this.#trusted.check(unmapped, family);
  }
}

function unmap(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value?.trim();
}

function formatAddress(address: string, port: number | undefined): string {
  return port === undefined ? formatHost(address) : formatHostPort(address, port);
}
