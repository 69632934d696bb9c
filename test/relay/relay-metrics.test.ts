import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_MESSAGE } from '../../src/protocol/codec.js';
import { SESSION_CLOSE_REASONS } from '../../src/relay/relay-vocabulary.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';

let relay: InProcessRelay;
beforeAll(async () => {
  relay = await startInProcessRelay();
});
afterAll(async () => {
  await relay.stop();
});

/** Value of each `name{reason="..."}` series on the relay's /metrics endpoint. */
async function byReason(name: string): Promise<Map<string, number>> {
  // the metrics endpoint binds every interface, as NetBird's does
  const text = await (await fetch(`http://127.0.0.1:${relay.metricsAddress.port}/metrics`)).text();
  const series = new Map<string, number>();
  for (const [, reason, value] of text.matchAll(new RegExp(`^${name}\\{reason="([^"]+)"\\} (\\S+)$`, 'gm')))
    series.set(reason!, Number(value));
  return series;
}

describe('relay_session_closes_total', () => {
  it('shows every close reason at 0 before any session closed, so rate() has a sample before the first close', async () => {
    const series = await byReason('relay_session_closes_total');
    // the reasons operators see on dashboards, spelled out so a renamed one fails here
    for (const reason of [
      'client_close',
      'drain',
      'rebalance',
      'health_check_timeout',
      'bad_magic',
      'ws_invalid_utf8',
    ])
      expect(SESSION_CLOSE_REASONS).toContain(reason);
    expect(Object.fromEntries(series)).toEqual(
      Object.fromEntries(SESSION_CLOSE_REASONS.map((reason) => [reason, 0])),
    );
  });

  it('still counts a close on top of the zero', async () => {
    const client = await RelayTestClient.connect(relay.url, {
      identifier: 'metrics-close',
      secret: TEST_SECRET,
    });
    // as NetBird's Client.Close does: the close message, then the relay ends the session
    client.send(CLOSE_MESSAGE);
    await client.closed;
    await expect
      .poll(async () => (await byReason('relay_session_closes_total')).get('client_close'), {
        timeout: 5_000,
      })
      .toBe(1);
    const others = [...(await byReason('relay_session_closes_total'))].filter(
      ([reason]) => reason !== 'client_close',
    );
    expect(others.every(([, value]) => value === 0)).toBe(true);
  });
});
