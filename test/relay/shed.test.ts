import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_MESSAGE } from '../../src/protocol/codec.js';
import { metricValue } from '../support/metric-value.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';

let relay: InProcessRelay;
beforeAll(async () => {
  relay = await startInProcessRelay();
});
afterAll(async () => {
  await relay.stop();
});

describe('shedding peers for rebalancing', () => {
  it('sends close to exactly the requested number of peers, spread over the window', async () => {
    const clients = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        RelayTestClient.connect(relay.url, { identifier: `shed-${i}`, secret: TEST_SECRET }),
      ),
    );
    const started = Date.now();
    const shed = await relay.relay.shed(4, 300);
    const elapsed = Date.now() - started;
    expect(shed).toBe(4);
    expect(elapsed).toBeGreaterThanOrEqual(200);
    // The server's own count is authoritative; the clients see it as close message + close.
    expect(relay.relay.peerCount).toBe(6);
    const closedClients = await firstN(
      clients.map((c) => c.closed.then(() => c)),
      4,
    );
    for (const c of closedClients) expect(await c.next().catch(() => undefined)).toEqual(CLOSE_MESSAGE);
    const survivors = clients.filter((c) => !closedClients.includes(c));
    survivors[0]!.sendTransport(survivors[1]!.peerId, Buffer.from('still relayed'));
    expect((await survivors[1]!.next()).subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('still relayed');
    expect(await metricValue(relay.metrics, 'relay_session_closes_total', { reason: 'rebalance' })).toBe(4);
    for (const c of clients) c.close();
  });

  it('ignores a second request while a round is still closing peers', async () => {
    const clients = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        RelayTestClient.connect(relay.url, { identifier: `twice-${i}`, secret: TEST_SECRET }),
      ),
    );
    const before = relay.relay.peerCount;
    const first = relay.relay.shed(2, 200);
    expect(await relay.relay.shed(3, 0)).toBe(0);
    expect(await first).toBe(2);
    expect(relay.relay.peerCount).toBe(before - 2);
    // Once the round is over, a new one is accepted.
    expect(await relay.relay.shed(1, 0)).toBe(1);
    for (const c of clients) c.close();
  });
});

function firstN<T>(promises: Promise<T>[], n: number): Promise<T[]> {
  return new Promise((resolve) => {
    const done: T[] = [];
    for (const p of promises) {
      void p.then((value) => {
        done.push(value);
        if (done.length === n) resolve(done);
      });
    }
  });
}
