import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTH_CHECK_MESSAGE } from '../../src/protocol/codec.js';
import { metricValue } from '../support/metric-value.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { TRANSPORT_HEADER_SIZE } from '../../src/protocol/constants.js';

let relay: InProcessRelay;

beforeAll(async () => {
  relay = await startInProcessRelay({ NB_HEALTH_CHECK_INTERVAL: '150ms', NB_HEALTH_CHECK_TIMEOUT: '400ms' });
});
afterAll(async () => {
  await relay.stop();
});

describe('health checks', () => {
  it('the server sends [1][5] every interval', async () => {
    const client = await RelayTestClient.connect(relay.url, {
      identifier: 'hc-listener',
      secret: TEST_SECRET,
      answerHealthChecks: false,
    });
    const started = Date.now();
    const first = await client.next(2_000);
    expect(first).toEqual(HEALTH_CHECK_MESSAGE);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    client.send(HEALTH_CHECK_MESSAGE);
    expect(await client.next(2_000)).toEqual(HEALTH_CHECK_MESSAGE);
    client.close();
  });

  it('closes a peer that does not answer within the timeout', async () => {
    const before = await metricValue(relay.metrics, 'relay_session_closes_total', {
      reason: 'health_check_timeout',
    });
    const silent = await RelayTestClient.connect(relay.url, {
      identifier: 'hc-silent',
      secret: TEST_SECRET,
      answerHealthChecks: false,
    });
    await silent.closed;
    expect(
      await metricValue(relay.metrics, 'relay_session_closes_total', { reason: 'health_check_timeout' }),
    ).toBe(before + 1);
  });

  it('keeps a peer that answers, across many intervals', async () => {
    const alive = await RelayTestClient.connect(relay.url, { identifier: 'hc-alive', secret: TEST_SECRET });
    const peer = await RelayTestClient.connect(relay.url, { identifier: 'hc-peer', secret: TEST_SECRET });
    // A probe that answers twice and then falls silent: its closing marks that several intervals and a full
    // timeout have passed, with no traffic at all from `alive`.
    const probe = await RelayTestClient.connect(relay.url, {
      identifier: 'hc-probe',
      secret: TEST_SECRET,
      answerHealthChecks: false,
    });
    for (let i = 0; i < 2; i++) {
      await probe.next(2_000);
      probe.send(HEALTH_CHECK_MESSAGE);
    }
    await probe.closed;
    expect(alive.isClosed).toBe(false);
    peer.sendTransport(alive.peerId, Buffer.from('after idle'));
    expect((await alive.next()).subarray(TRANSPORT_HEADER_SIZE).toString()).toBe('after idle');
    alive.close();
    peer.close();
  });
});
