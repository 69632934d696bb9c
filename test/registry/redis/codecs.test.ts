import { describe, expect, it } from 'vitest';
import { formatPeerKey } from '../../../src/protocol/peer-id.js';
import { decodeRedisPeerEvent } from '../../../src/registry/redis/event-codec.js';
import { decodeMemberRecord, decodeMemberTable } from '../../../src/registry/redis/member-codec.js';
import { decodeStoredRoute } from '../../../src/registry/redis/route-codec.js';
import { peer } from '../../cluster/cluster-test-kit.js';

const p = peer('codec-peer');
const printed = formatPeerKey(p);

describe('route value "token|instance|session"', () => {
  it('decodes the three fields', () => {
    expect(decodeStoredRoute('1700000000000001|inst-a|1700000000000000')).toEqual({
      token: 1700000000000001,
      instance: 'inst-a',
      session: 1700000000000000,
    });
  });

  it('rejects values without two separators or with an empty token', () => {
    for (const bad of ['', '12', '12|a', '|a|3']) expect(decodeStoredRoute(bad)).toBeUndefined();
  });
});

describe('member info "mesh address|pod name"', () => {
  it('splits at the last separator, so an IPv6 address stays whole', () => {
    expect(decodeMemberRecord('[fd00::1]:7000|relay-0')).toEqual({
      meshAddress: '[fd00::1]:7000',
      podName: 'relay-0',
    });
  });

  it('reads the flat HGETALL list as instance -> record', () => {
    const table = decodeMemberTable(['i1', '10.0.0.1:7000|relay-0', 'i2', '10.0.0.2:7000|relay-1']);
    expect([...table]).toEqual([
      ['i1', { meshAddress: '10.0.0.1:7000', podName: 'relay-0' }],
      ['i2', { meshAddress: '10.0.0.2:7000', podName: 'relay-1' }],
    ]);
  });
});

describe('peer event "kind|peer|token|instance|session|epoch|ms"', () => {
  it('decodes an online and an offline event', () => {
    expect(decodeRedisPeerEvent(`on|${printed}|5|inst-a|4|E1|1700000000123`)).toEqual({
      kind: 'online',
      peer: p,
      token: 5,
      instance: 'inst-a',
      session: 4,
      epoch: 'E1',
      publishedAt: 1700000000123,
    });
    expect(decodeRedisPeerEvent(`off|${printed}|5|inst-a|4|E1|1`)?.kind).toBe('offline');
  });

  it('ignores what is not one of ours: wrong field count, unknown kind, bad peer id', () => {
    expect(decodeRedisPeerEvent(`on|${printed}|5|inst-a|4|E1`)).toBeUndefined();
    expect(decodeRedisPeerEvent(`on|${printed}|5|inst-a|4|E1|1|x`)).toBeUndefined();
    expect(decodeRedisPeerEvent(`up|${printed}|5|inst-a|4|E1|1`)).toBeUndefined();
    expect(decodeRedisPeerEvent(`on|not-a-peer|5|inst-a|4|E1|1`)).toBeUndefined();
  });
});
