import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTransport } from '../../src/protocol/codec.js';
import { metricValue } from '../support/metric-value.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';

let relay: InProcessRelay;

beforeAll(async () => {
  relay = await startInProcessRelay({ NB_SEND_QUEUE_BYTES: '65536' });
});
afterAll(async () => {
  await relay.stop();
});

describe('a receiver that stops reading', () => {
  it('costs the relay bounded memory, drops oldest data (counted) and never stalls other traffic', async () => {
    const sender = await RelayTestClient.connect(relay.url, {
      identifier: 'slow-sender',
      secret: TEST_SECRET,
    });
    const stalled = await RelayTestClient.connect(relay.url, {
      identifier: 'slow-stalled',
      secret: TEST_SECRET,
    });
    const healthy = await RelayTestClient.connect(relay.url, {
      identifier: 'slow-healthy',
      secret: TEST_SECRET,
    });
    // Stop reading at the TCP level: the kernel buffers fill, then the relay's queue.
    stalled.ws.pause();
    const before = await metricValue(relay.metrics, 'relay_dropped_messages_total', { reason: 'queue_full' });
    const packet = encodeTransport(stalled.peerId, Buffer.alloc(1400, 7));
    const total = 20_000; // 28 MB toward a peer that reads nothing
    for (let i = 0; i < total; i++) sender.send(packet);
    // Traffic between two other peers is unaffected while this goes on.
    sender.sendTransport(healthy.peerId, Buffer.from('through'));
    expect((await healthy.next(10_000)).subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('through');
    // Wait until the relay has seen everything: the drop counter accounts for whatever was not buffered.
    const dropped = async (): Promise<number> =>
      (await metricValue(relay.metrics, 'relay_dropped_messages_total', { reason: 'queue_full' })) - before;
    // Whatever was not dropped sits in the 64 KiB queue, the socket's high-water mark or the kernel's buffers:
    // at most a fifth of the 28 MB sent, so the relay's memory for this peer is bounded.
    await expect.poll(dropped, { timeout: 20_000, interval: 20 }).toBeGreaterThan(total * 0.8);
    expect(sender.isClosed).toBe(false);
    stalled.terminate();
    sender.close();
    healthy.close();
  }, 60_000);
});
