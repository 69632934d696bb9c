import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateToken, HmacTokenValidator } from '../../src/auth/hmac-token.js';

const NOW = 1_800_000_000;

/** Independent construction of a token from PROTOCOL.md, not via generateToken. */
function handMadeToken(secret: string, expiry: string, algorithm = 1): Buffer {
  const key = createHash('sha256').update(secret).digest();
  const signature = createHmac('sha256', key).update(expiry).digest();
  return Buffer.concat([Buffer.from([algorithm]), signature, Buffer.from(expiry)]);
}

describe('HMAC v2 tokens', () => {
  const validator = new HmacTokenValidator('s3cret');

  it('accepts a token signed with SHA-256(secret) as key, until its expiry', () => {
    const token = handMadeToken('s3cret', String(NOW + 60));
    expect(validator.check(token, NOW)).toEqual({ ok: true, expiresAt: NOW + 60 });
    expect(validator.check(token, NOW + 60).ok).toBe(true);
    expect(validator.check(token, NOW + 61)).toEqual({ ok: false, reason: 'expired_token' });
  });

  it('rejects the raw secret used as key (the secret must be hashed first)', () => {
    const signature = createHmac('sha256', 's3cret')
      .update(String(NOW + 60))
      .digest();
    const token = Buffer.concat([Buffer.from([1]), signature, Buffer.from(String(NOW + 60))]);
    expect(validator.check(token, NOW)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('rejects other algorithms, forged signatures and short payloads', () => {
    expect(validator.check(handMadeToken('s3cret', String(NOW + 60), 2), NOW).ok).toBe(false);
    expect(validator.check(handMadeToken('other', String(NOW + 60)), NOW)).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(validator.check(handMadeToken('s3cret', '12345'), NOW)).toEqual({
      ok: false,
      reason: 'malformed_token',
    });
    expect(validator.check(handMadeToken('s3cret', '12345678xx'), NOW)).toEqual({
      ok: false,
      reason: 'malformed_token',
    });
  });

  it('generated tokens validate; any flipped bit invalidates', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.integer({ min: 1, max: 10 ** 7 }),
        fc.nat(),
        (secret, ttl, bit) => {
          const token = generateToken(secret, ttl, NOW);
          const v = new HmacTokenValidator(secret);
          expect(v.check(token, NOW).ok).toBe(true);
          const flipped = Buffer.from(token);
          const index = bit % (flipped.length * 8);
          flipped[index >> 3] = (flipped[index >> 3] as number) ^ (1 << (index & 7));
          expect(v.check(flipped, NOW).ok).toBe(false);
        },
      ),
    );
  });
});
