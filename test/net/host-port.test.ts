import { describe, expect, it } from 'vitest';
import { formatHost, formatHostPort } from '../../src/net/host-port.js';

describe('host:port formatting', () => {
  it('brackets IPv6 literals only', () => {
    expect(formatHostPort('10.0.0.7', 7946)).toBe('10.0.0.7:7946');
    expect(formatHostPort('fd00::7', 7946)).toBe('[fd00::7]:7946');
    expect(formatHostPort('relay.example.com', '443')).toBe('relay.example.com:443');
    expect(formatHost('::1')).toBe('[::1]');
    expect(formatHost('')).toBe('');
  });
});
