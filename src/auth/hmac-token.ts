import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Algorithm byte of an HMAC v2 token; only HMAC-SHA256 exists. */
export const HMAC_SHA256_ALGORITHM = 1;
const SIGNATURE_SIZE = 32;
/** Expiry is ASCII decimal Unix seconds; NetBird never writes fewer than 10 digits. */
const MIN_PAYLOAD_SIZE = 10;
const MAX_PAYLOAD_SIZE = 20;

export type TokenRejection = 'malformed_token' | 'unknown_algorithm' | 'bad_signature' | 'expired_token';

export type TokenCheck = { ok: true; expiresAt: number } | { ok: false; reason: TokenRejection };

/** The HMAC key is the SHA-256 of the configured secret string, as NetBird derives it. */
function deriveKey(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function sign(key: Buffer, payload: Buffer): Buffer {
  return createHmac('sha256', key).update(payload).digest();
}

/** Validates `[algorithm][signature][payload]` tokens against one shared secret. */
export class HmacTokenValidator {
  readonly #key: Buffer;

  constructor(secret: string) {
    if (secret.length === 0) throw new RangeError('auth secret must not be empty');
    this.#key = deriveKey(secret);
  }

  check(token: Buffer, nowSeconds: number = Math.floor(Date.now() / 1000)): TokenCheck {
    if (token.length < 1 + SIGNATURE_SIZE + MIN_PAYLOAD_SIZE) return { ok: false, reason: 'malformed_token' };
    if (token[0] !== HMAC_SHA256_ALGORITHM) return { ok: false, reason: 'unknown_algorithm' };
    const signature = token.subarray(1, 1 + SIGNATURE_SIZE);
    const payload = token.subarray(1 + SIGNATURE_SIZE);
    // The signature is checked before the payload is interpreted: nothing unauthenticated is parsed.
    if (!timingSafeEqual(sign(this.#key, payload), signature)) return { ok: false, reason: 'bad_signature' };
    const expiresAt = parseExpiry(payload);
    if (expiresAt === undefined) return { ok: false, reason: 'malformed_token' };
    if (nowSeconds > expiresAt) return { ok: false, reason: 'expired_token' };
    return { ok: true, expiresAt };
  }
}

function parseExpiry(payload: Buffer): number | undefined {
  if (payload.length < MIN_PAYLOAD_SIZE || payload.length > MAX_PAYLOAD_SIZE) return undefined;
  for (const byte of payload) if (byte < 0x30 || byte > 0x39) return undefined;
  const value = Number(payload.toString('ascii'));
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Issues tokens the relay accepts: for the token tool, tests and benchmarks. */
export function generateToken(
  secret: string,
  ttlSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): Buffer {
  const payload = Buffer.from(String(nowSeconds + ttlSeconds).padStart(MIN_PAYLOAD_SIZE, '0'), 'ascii');
  const signature = sign(deriveKey(secret), payload);
  return Buffer.concat([Buffer.from([HMAC_SHA256_ALGORITHM]), signature, payload]);
}
