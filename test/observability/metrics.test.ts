import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAuthResponse } from '../../src/protocol/codec.js';
import { RelayProcess } from '../support/relay-process.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { TEST_SECRET } from '../support/in-process-relay.js';

let relay: RelayProcess;
beforeAll(async () => {
  relay = await RelayProcess.start();
});
afterAll(async () => {
  await relay.stop();
});

describe('/metrics and health endpoints', () => {
  it('exposes NetBird metric names with live values', async () => {
    const a = await RelayTestClient.connect(relay.url, { identifier: 'm-a', secret: TEST_SECRET });
    const b = await RelayTestClient.connect(relay.url, { identifier: 'm-b', secret: TEST_SECRET });
    a.sendTransport(b.peerId, Buffer.alloc(100));
    await b.next();
    const again = await RelayTestClient.connect(relay.url, { identifier: 'm-a', secret: TEST_SECRET });
    expect(await relay.metric('relay_peers')).toBe(2);
    expect(await relay.metric('relay_peers_active')).toBe(1);
    expect(await relay.metric('relay_peers_idle')).toBe(1);
    expect(await relay.metric('relay_transfer_received_bytes_total')).toBe(138);
    // The relayed message and one auth response per session (the relay names itself by its URL).
    const authResponse = encodeAuthResponse(relay.url).length;
    expect(await relay.metric('relay_transfer_sent_bytes_total')).toBe(138 + 3 * authResponse);
    expect(await relay.metric('relay_peer_reconnections_total')).toBe(1);
    expect(await relay.metric('relay_peer_authentication_time_milliseconds_count')).toBe(3);
    expect(await relay.metric('relay_peer_store_time_milliseconds_count')).toBe(3);
    const text = await relay.metrics();
    for (const name of [
      'relay_dropped_messages_total',
      'relay_handshake_failures_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    again.close();
    b.close();
  });

  it('serves /healthz and /readyz', async () => {
    expect((await fetch(`http://127.0.0.1:${relay.healthPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${relay.healthPort}/readyz`)).status).toBe(200);
  });
});
