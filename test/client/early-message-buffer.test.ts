import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EarlyMessageBuffer } from '../../src/client/early-message-buffer.js';
import { peerIdFromIdentifier, peerKeyFromBytes } from '../../src/protocol/peer-id.js';

const peer = (name: string) => peerKeyFromBytes(peerIdFromIdentifier(name));

describe('early message buffer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps the newest message per peer until it is taken', () => {
    const buffer = new EarlyMessageBuffer({ ttlMs: 5_000, capacity: 10 });
    buffer.put(peer('a'), Buffer.from('1'));
    buffer.put(peer('a'), Buffer.from('2'));
    buffer.put(peer('b'), Buffer.from('3'));
    expect(buffer.size).toBe(2);
    expect(buffer.take(peer('a'))?.toString()).toBe('2');
    expect(buffer.take(peer('a'))).toBeUndefined();
  });

  it('forgets messages after the TTL, with one timer', () => {
    const buffer = new EarlyMessageBuffer({ ttlMs: 5_000, capacity: 10 });
    buffer.put(peer('a'), Buffer.from('old'));
    vi.advanceTimersByTime(3_000);
    buffer.put(peer('b'), Buffer.from('newer'));
    vi.advanceTimersByTime(2_000);
    expect(buffer.size).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(3_000);
    expect(buffer.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses new peers when full', () => {
    const buffer = new EarlyMessageBuffer({ ttlMs: 5_000, capacity: 2 });
    expect(buffer.put(peer('a'), Buffer.from('1'))).toBe(true);
    expect(buffer.put(peer('b'), Buffer.from('2'))).toBe(true);
    expect(buffer.put(peer('c'), Buffer.from('3'))).toBe(false);
    expect(buffer.put(peer('a'), Buffer.from('replaced'))).toBe(true);
  });
});
