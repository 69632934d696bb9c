import { describe, expect, it } from 'vitest';
import { peerIdFromIdentifier, peerKeyFromBytes } from '../../src/protocol/peer-id.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import type { PeerEvent } from '../../src/registry/peer-registry.js';

const peer = peerKeyFromBytes(peerIdFromIdentifier('alice'));

describe('MemoryRegistry', () => {
  it('issues strictly increasing tokens and announces offline(old) before online(new)', async () => {
    const registry = new MemoryRegistry({ instanceId: 'i1' });
    const events: PeerEvent[] = [];
    registry.onEvent((e) => events.push(e));
    const first = await registry.register(peer);
    const second = await registry.register(peer);
    expect(second.token).toBeGreaterThan(first.token);
    expect(events.map((e) => [e.kind, e.token])).toEqual([
      ['online', first.token],
      ['offline', first.token],
      ['online', second.token],
    ]);
    expect(registry.locate(peer)).toEqual({ instance: 'i1', token: second.token });
  });

  it('compare-and-delete: a stale unregister changes nothing and announces nothing', async () => {
    const registry = new MemoryRegistry();
    const first = await registry.register(peer);
    const second = await registry.register(peer);
    const events: PeerEvent[] = [];
    registry.onEvent((e) => events.push(e));
    expect(await registry.unregister(first)).toBe(false);
    expect(events).toEqual([]);
    expect(registry.locate(peer)?.token).toBe(second.token);
    expect(await registry.unregister(second)).toBe(true);
    expect(events.map((e) => [e.kind, e.token])).toEqual([['offline', second.token]]);
    expect(await registry.lookup(peer)).toBeUndefined();
  });

  it('keeps delivering to other listeners when one throws', async () => {
    const errors: unknown[] = [];
    const registry = new MemoryRegistry({ onListenerError: (e) => errors.push(e) });
    const seen: string[] = [];
    registry.onEvent(() => {
      throw new Error('boom');
    });
    registry.onEvent((e) => seen.push(e.kind));
    await registry.register(peer);
    expect(seen).toEqual(['online']);
    expect(errors).toHaveLength(1);
  });
});
