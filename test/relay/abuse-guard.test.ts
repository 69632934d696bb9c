import { describe, expect, it } from 'vitest';
import { AbuseGuard, type AbuseLimits } from '../../src/relay/abuse-guard.js';

const OFF: AbuseLimits = {
  connectRate: 0,
  connectBurst: 0,
  handshakeRate: 0,
  handshakeBurst: 0,
  maxConnectionsPerIp: 0,
};

/** A guard on a clock the test sets. */
function guard(limits: Partial<AbuseLimits>): { guard: AbuseGuard; at: (ms: number) => void } {
  let now = 0;
  return { guard: new AbuseGuard({ ...OFF, ...limits }, () => now), at: (ms) => (now = ms) };
}

function connects(g: AbuseGuard, ip: string, times: number): (string | undefined)[] {
  return Array.from({ length: times }, () => g.connect(ip));
}

describe('AbuseGuard', () => {
  it('lets a burst of connections through, then refills at the rate', () => {
    const { guard: g, at } = guard({ connectRate: 2, connectBurst: 3 });
    expect(connects(g, '192.0.2.1', 4)).toEqual([undefined, undefined, undefined, 'connect_rate']);
    // 2 per second: after 499 ms less than one token has come back, after 500 ms one has.
    at(499);
    expect(g.connect('192.0.2.1')).toBe('connect_rate');
    at(500);
    expect(connects(g, '192.0.2.1', 2)).toEqual([undefined, 'connect_rate']);
    // A long pause refills to the burst, not beyond it.
    at(60_000);
    expect(connects(g, '192.0.2.1', 4)).toEqual([undefined, undefined, undefined, 'connect_rate']);
  });

  it('keeps one bucket per IP and none at all with the limit off', () => {
    const { guard: g } = guard({ connectRate: 1, connectBurst: 1 });
    expect(connects(g, '192.0.2.1', 2)).toEqual([undefined, 'connect_rate']);
    expect(g.connect('192.0.2.2')).toBeUndefined();
    const { guard: off } = guard({});
    expect(connects(off, '192.0.2.1', 1_000).filter((r) => r !== undefined)).toEqual([]);
  });

  it('caps the upgraded connections of one IP until one is released, once', () => {
    const { guard: g } = guard({ maxConnectionsPerIp: 2 });
    const first = g.upgrade('192.0.2.1');
    const second = g.upgrade('192.0.2.1');
    expect(typeof first).toBe('function');
    expect(typeof second).toBe('function');
    expect(g.upgrade('192.0.2.1')).toBe('ip_connections');
    expect(typeof g.upgrade('192.0.2.2')).toBe('function');
    (first as () => void)();
    // A second release of the same connection frees nothing more.
    (first as () => void)();
    expect(typeof g.upgrade('192.0.2.1')).toBe('function');
    expect(g.upgrade('192.0.2.1')).toBe('ip_connections');
  });

  it('limits the upgrade rate, and a refused upgrade holds no connection slot', () => {
    const { guard: g, at } = guard({ handshakeRate: 1, handshakeBurst: 1, maxConnectionsPerIp: 1 });
    const release = g.upgrade('192.0.2.1');
    expect(typeof release).toBe('function');
    (release as () => void)();
    expect(g.upgrade('192.0.2.1')).toBe('handshake_rate');
    at(1_000);
    expect(typeof g.upgrade('192.0.2.1')).toBe('function');
  });

  it('applies new limits to the next connection', () => {
    const { guard: g } = guard({ connectRate: 1, connectBurst: 1 });
    expect(connects(g, '192.0.2.1', 2)).toEqual([undefined, 'connect_rate']);
    g.update({ ...OFF });
    expect(g.limits).toEqual(OFF);
    expect(g.connect('192.0.2.1')).toBeUndefined();
  });

  it('when its table of IPs is full, forgets full buckets first: an IP that used its burst stays limited', () => {
    const { guard: g, at } = guard({ connectRate: 1, connectBurst: 2 });
    expect(connects(g, 'hot', 2)).toEqual([undefined, undefined]);
    // Fill the table (100,000 IPs) with IPs that used one token each.
    for (let i = 1; i < 100_000; i++) g.connect(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    // One second on, every other IP is full again; "hot" has one token of two.
    at(1_000);
    expect(g.connect('a-newcomer')).toBeUndefined();
    expect(connects(g, 'hot', 2)).toEqual([undefined, 'connect_rate']);
  });

  it('when no bucket is full, forgets the oldest IPs to stay bounded', () => {
    const { guard: g } = guard({ connectRate: 1, connectBurst: 1 });
    expect(connects(g, 'oldest', 2)).toEqual([undefined, 'connect_rate']);
    for (let i = 1; i < 100_000; i++) g.connect(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    expect(g.connect('a-newcomer')).toBeUndefined();
    // "oldest" was dropped to make room, so it starts over with a fresh burst.
    expect(g.connect('oldest')).toBeUndefined();
  });
});
