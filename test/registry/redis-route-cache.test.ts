import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PeerEvent } from '../../src/registry/peer-registry.js';
import { RouteCache } from '../../src/registry/redis-route-cache.js';
import { peer } from '../cluster/cluster-test-kit.js';

const p = peer('route-cache');

function cache(): { routes: RouteCache; emitted: PeerEvent[] } {
  const emitted: PeerEvent[] = [];
  return { routes: new RouteCache((event) => emitted.push(event)), emitted };
}

describe('RouteCache', () => {
  it('drops events older than the newest applied, and duplicates', () => {
    const { routes, emitted } = cache();
    expect(routes.applyOnline(p, 'A', 10, 10, 'E')).toBe('applied');
    expect(routes.applyOnline(p, 'A', 10, 10, 'E')).toBe('duplicate');
    expect(routes.applyOffline(p, 10, 'E')).toBe('applied');
    expect(routes.applyOnline(p, 'A', 10, 10, 'E')).toBe('duplicate'); // late copy after its offline
    expect(routes.applyOnline(p, 'B', 9, 9, 'E')).toBe('stale');
    expect(emitted.map((e) => `${e.kind}:${e.token}`)).toEqual(['online:10', 'offline:10']);
  });

  it('announces a missed offline before the online that replaces it', () => {
    const { routes, emitted } = cache();
    routes.applyOnline(p, 'A', 10, 10, 'E');
    routes.applyOnline(p, 'B', 20, 20, 'E');
    expect(emitted.map((e) => `${e.kind}:${e.instance}:${e.token}`)).toEqual([
      'online:A:10',
      'offline:A:10',
      'online:B:20',
    ]);
    expect(routes.get(p)).toMatchObject({ instance: 'B', token: 20 });
  });

  it('takes a restored session (same instance and session id) silently', () => {
    const { routes, emitted } = cache();
    routes.applyOnline(p, 'A', 10, 10, 'E1');
    expect(routes.applyOnline(p, 'A', 30, 10, 'E2')).toBe('refreshed');
    expect(emitted).toHaveLength(1);
    expect(routes.get(p)?.token).toBe(30);
  });

  it('keeps every listener view consistent whatever order and duplication events arrive in', () => {
    // A peer's sessions 1..n, each online then offline (the last may stay online);
    // the cache receives them shuffled and duplicated, as reply and pub/sub copies can be.
    const arbitrary = fc.integer({ min: 1, max: 8 }).chain((sessions) =>
      fc.tuple(
        fc.constant(sessions),
        fc.shuffledSubarray(
          Array.from({ length: sessions * 2 * 2 }, (_, i) => i),
          { minLength: 1 },
        ),
      ),
    );
    fc.assert(
      fc.property(arbitrary, ([sessions, order]) => {
        const { routes, emitted } = cache();
        for (const index of order) {
          const event = index % (sessions * 2);
          const token = Math.floor(event / 2) + 1;
          if (event % 2 === 0) routes.applyOnline(p, `I${token % 3}`, token, token, 'E');
          else routes.applyOffline(p, token, 'E');
        }
        let online: PeerEvent | undefined;
        let last = 0;
        for (const event of emitted) {
          if (event.kind === 'online') {
            expect(online).toBeUndefined();
            expect(event.token).toBeGreaterThan(last);
            online = event;
            last = event.token;
          } else {
            expect(online?.token).toBe(event.token);
            online = undefined;
          }
        }
        // The cache agrees with what the listeners were told.
        expect(routes.get(p)?.token).toBe(online?.token);
      }),
    );
  });
});
