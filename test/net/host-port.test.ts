import { describe, expect, it } from 'vitest';
import { formatHost, formatHostPort } from '../../src/net/host-port.js';
import { httpStatusOf } from '../../src/net/status-code.js';

describe('net building blocks', () => {
  it('brackets IPv6 literals only', () => {
    expect(formatHostPort('10.0.0.7', 7946)).toBe('10.0.0.7:7946');
    expect(formatHostPort('fd00::7', 7946)).toBe('[fd00::7]:7946');
    expect(formatHostPort('relay.example.com', '443')).toBe('relay.example.com:443');
    expect(formatHost('::1')).toBe('[::1]');
    expect(formatHost('')).toBe('');
  });

  it('finds the HTTP status in either field the client library uses', () => {
    expect(httpStatusOf({ code: 409 })).toBe(409);
    expect(httpStatusOf({ statusCode: 410, code: 'ECONNRESET' })).toBe(410);
    expect(httpStatusOf(new Error('x'))).toBeUndefined();
    expect(httpStatusOf(undefined)).toBeUndefined();
  });
});
