import { describe, expect, it } from 'vitest';
import { peerIdFromIdentifier, peerKeyFromBytes } from '../../src/protocol/peer-id.js';
import { EventFanout } from '../../src/registry/event-fanout.js';
import type { PeerEvent } from '../../src/registry/peer-registry.js';

function event(kind: PeerEvent['kind'], token: number): PeerEvent {
  return {
    kind,
    peer: peerKeyFromBytes(peerIdFromIdentifier('fanout')),
    instance: 'i-1',
    token,
    epoch: 'E1',
  };
}

describe('EventFanout', () => {
  it('gives every listener every event in emission order', () => {
    const errors: unknown[] = [];
    const fanout = new EventFanout((err) => errors.push(err));
    const first: number[] = [];
    const second: number[] = [];
    fanout.add((e) => first.push(e.token));
    fanout.add((e) => second.push(e.token));
    for (const token of [1, 2, 3]) fanout.emit(event(token % 2 ? 'online' : 'offline', token));
    expect(first).toEqual([1, 2, 3]);
    expect(second).toEqual([1, 2, 3]);
    expect(errors).toEqual([]);
  });

  it('reports a throwing listener and still serves the ones after it', () => {
    const errors: unknown[] = [];
    const fanout = new EventFanout((err) => errors.push(err));
    const seen: number[] = [];
    const boom = new Error('listener failed');
    fanout.add(() => {
      throw boom;
    });
    fanout.add((e) => seen.push(e.token));
    fanout.emit(event('online', 1));
    fanout.emit(event('offline', 2));
    expect(seen).toEqual([1, 2]);
    expect(errors).toEqual([boom, boom]);
  });

  it('stops delivering to a listener once it is removed', () => {
    const fanout = new EventFanout(() => {});
    const seen: number[] = [];
    const remove = fanout.add((e) => seen.push(e.token));
    fanout.emit(event('online', 1));
    remove();
    fanout.emit(event('offline', 2));
    expect(seen).toEqual([1]);
  });
});
