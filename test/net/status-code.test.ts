import { describe, expect, it } from 'vitest';
import { httpStatusOf } from '../../src/net/status-code.js';

describe('httpStatusOf', () => {
  it('finds the HTTP status in either field the client library uses', () => {
    expect(httpStatusOf({ code: 409 })).toBe(409);
    expect(httpStatusOf({ statusCode: 410, code: 'ECONNRESET' })).toBe(410);
    expect(httpStatusOf(new Error('x'))).toBeUndefined();
    expect(httpStatusOf(undefined)).toBeUndefined();
  });
});
