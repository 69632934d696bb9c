import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ClientAddressResolver } from '../../src/relay/client-address.js';

// The resolver reads only these fields of a request; a plain object stands in for the parsed HTTP request.
function request(remoteAddress: string, headers: Record<string, string>): IncomingMessage {
  return { socket: { remoteAddress, remotePort: 40000 }, headers } as unknown as IncomingMessage;
}

describe('client address behind proxies', () => {
  const resolver = new ClientAddressResolver(['10.0.0.0/8', '::1']);
  const realIp = { 'x-real-ip': '203.0.113.9', 'x-real-port': '5555' };

  it('believes X-Real-Ip / X-Real-Port from a trusted proxy', () => {
    expect(resolver.resolve(request('10.1.2.3', realIp))).toBe('203.0.113.9:5555');
    expect(resolver.resolve(request('::ffff:10.1.2.3', realIp))).toBe('203.0.113.9:5555');
    expect(resolver.resolve(request('::1', realIp))).toBe('203.0.113.9:5555');
  });

  it('ignores them from anyone else, and when no proxy is trusted', () => {
    expect(resolver.resolve(request('192.0.2.1', realIp))).toBe('192.0.2.1:40000');
    expect(new ClientAddressResolver([]).resolve(request('10.1.2.3', realIp))).toBe('10.1.2.3:40000');
  });

  it('ignores a header that is not an IP', () => {
    expect(resolver.resolve(request('10.1.2.3', { 'x-real-ip': 'evil' }))).toBe('10.1.2.3:40000');
  });
});
