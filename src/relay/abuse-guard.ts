/** Per-client-IP limits, derper-style; 0 turns a limit off. */
export interface AbuseLimits {
  /** TCP connections per second per IP (refilled), with this burst. */
  readonly connectRate: number;
  readonly connectBurst: number;
  /** WebSocket upgrades per second per client IP, with this burst. */
  readonly handshakeRate: number;
  readonly handshakeBurst: number;
  /** Upgraded connections one client IP may hold at once. */
  readonly maxConnectionsPerIp: number;
}

export type AbuseRefusal = 'connect_rate' | 'handshake_rate' | 'ip_connections';

/** IPs with a bucket at once; full buckets are forgotten first, so the map is bounded. */
const MAX_TRACKED_IPS = 100_000;

interface Bucket {
  tokens: number;
  at: number;
}

class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();

  /** Takes one token for `ip`; false when its bucket is empty. */
  take(ip: string, rate: number, burst: number, now: number): boolean {
    if (rate <= 0) return true;
    let bucket = this.#buckets.get(ip);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_TRACKED_IPS) this.#forgetFull(rate, burst, now);
      bucket = { tokens: burst, at: now };
      this.#buckets.set(ip, bucket);
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  #forgetFull(rate: number, burst: number, now: number): void {
    for (const [ip, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * rate >= burst) this.#buckets.delete(ip);
    }
    // Still full: the oldest go (an attacker with that many addresses gains one fresh burst each).
    for (const ip of this.#buckets.keys()) {
      if (this.#buckets.size < MAX_TRACKED_IPS) break;
      this.#buckets.delete(ip);
    }
  }
}

/** Decides, per client IP, whether a connection or handshake may proceed. Limits can change live. */
export class AbuseGuard {
  #limits: AbuseLimits;
  readonly #now: () => number;
  readonly #connects = new TokenBuckets();
  readonly #handshakes = new TokenBuckets();
  readonly #open = new Map<string, number>();

  constructor(limits: AbuseLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  get limits(): AbuseLimits {
    return this.#limits;
  }

  update(limits: AbuseLimits): void {
    this.#limits = limits;
  }

  /** A new TCP connection from `ip` (not a trusted proxy's). */
  connect(ip: string): AbuseRefusal | undefined {
    const { connectRate, connectBurst } = this.#limits;
    return this.#connects.take(ip, connectRate, connectBurst, this.#now()) ? undefined : 'connect_rate';
  }

  /** A WebSocket upgrade from client `ip`; on success call the returned release when the socket closes. */
  upgrade(ip: string): AbuseRefusal | (() => void) {
    const { handshakeRate, handshakeBurst, maxConnectionsPerIp } = this.#limits;
    const open = this.#open.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && open >= maxConnectionsPerIp) return 'ip_connections';
    if (!this.#handshakes.take(ip, handshakeRate, handshakeBurst, this.#now())) return 'handshake_rate';
    this.#open.set(ip, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(ip) ?? 1) - 1;
      if (left === 0) this.#open.delete(ip);
      else this.#open.set(ip, left);
    };
  }
}
