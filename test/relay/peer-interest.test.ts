import { describe, expect, it } from 'vitest';
import { PeerInterest } from '../../src/relay/peer-interest.js';
import { peer } from '../cluster/cluster-test-kit.js';

const a = peer('target-a');
const b = peer('target-b');

describe('PeerInterest', () => {
  it('online interest is used up by the first online; offline interest stays until unsubscribe', () => {
    const interest = new PeerInterest<string>();
    interest.subscribe('s1', a);
    interest.subscribe('s2', a);
    expect(interest.takeOnlineInterest(a)).toEqual(['s1', 's2']);
    expect(interest.takeOnlineInterest(a)).toEqual([]);
    expect(interest.offlineInterest(a)).toEqual(['s1', 's2']);
    expect(interest.offlineInterest(a)).toEqual(['s1', 's2']);
    // Subscribing again re-arms online interest for that subscriber only.
    interest.subscribe('s2', a);
    expect(interest.takeOnlineInterest(a)).toEqual(['s2']);
    interest.unsubscribe('s1', a);
    expect(interest.offlineInterest(a)).toEqual(['s2']);
  });

  it('counts targets per subscriber and forgets a removed subscriber everywhere', () => {
    const interest = new PeerInterest<string>();
    interest.subscribe('s1', a);
    interest.subscribe('s1', b);
    interest.subscribe('s1', b);
    interest.subscribe('s2', b);
    expect(interest.countFor('s1')).toBe(2);
    expect(interest.countFor('s2')).toBe(1);
    interest.removeSubscriber('s1');
    expect(interest.countFor('s1')).toBe(0);
    expect(interest.offlineInterest(a)).toEqual([]);
    expect(interest.offlineInterest(b)).toEqual(['s2']);
    interest.unsubscribe('s2', b);
    interest.unsubscribe('s2', b);
    expect(interest.countFor('s2')).toBe(0);
    expect(interest.takeOnlineInterest(b)).toEqual([]);
    // Removing an unknown subscriber is a no-op.
    interest.removeSubscriber('nobody');
  });
});
