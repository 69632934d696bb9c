import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LocalSessions } from '../../src/registry/local-sessions.js';
import { peer } from '../cluster/cluster-test-kit.js';

function sessions(): { sessions: LocalSessions; gauge: Gauge } {
  const gauge = new Gauge({ name: 'g', help: 'h', registers: [new Registry()] });
  return { sessions: new LocalSessions(gauge), gauge };
}

describe('LocalSessions', () => {
  it('keeps the gauge at the number of sessions', async () => {
    const { sessions: local, gauge } = sessions();
    local.add(peer('a'), 10);
    local.add(peer('b'), 11);
    expect((await gauge.get()).values[0]?.value).toBe(2);
    local.delete(peer('a'));
    local.delete(peer('a'));
    expect((await gauge.get()).values[0]?.value).toBe(1);
    expect(local.tokenOf(peer('b'))).toBe(11);
    expect(local.get(peer('b'))?.session).toBe(11);
  });

  it('marks a peer in flight for the whole of overlapping operations, and leaves it out of settled()', async () => {
    const { sessions: local } = sessions();
    const a = peer('a');
    local.add(a, 1);
    local.add(peer('b'), 2);
    let release!: () => void;
    const first = local.during(a, () => new Promise<void>((resolve) => (release = resolve)));
    const second = local.during(a, async () => 'done');
    expect(await second).toBe('done');
    expect(local.inFlight(a)).toBe(true);
    expect(local.settled().map((s) => s.registration.token)).toEqual([2]);
    release();
    await first;
    expect(local.inFlight(a)).toBe(false);
    await expect(local.during(a, async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(local.inFlight(a)).toBe(false);
  });
});
