import { describe, expect, it } from 'vitest';
import { CLOSE_MESSAGE } from '../../src/protocol/codec.js';
import { RelayProcess } from '../support/relay-process.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { TEST_SECRET } from '../support/in-process-relay.js';

describe('graceful shutdown (SIGTERM)', () => {
  it('turns readiness 503, sends close to every peer over the drain window, stops accepting, exits 0', async () => {
    const relay = await RelayProcess.start({ env: { NB_DRAIN_WINDOW: '1500ms' } });
    try {
      const clients = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          RelayTestClient.connect(relay.url, { identifier: `drain-${i}`, secret: TEST_SECRET }),
        ),
      );
      // When each close message arrived (not when the test got round to reading it).
      const closedAt: number[] = [];
      for (const client of clients) {
        client.ws.on('message', (data: Buffer) => {
          if (data.equals(CLOSE_MESSAGE)) closedAt.push(Date.now());
        });
      }
      relay.kill('SIGTERM');
      const firstClose = await clients[0]!.next(5_000);
      expect(firstClose).toEqual(CLOSE_MESSAGE);
      expect(await relay.readiness()).toBe(503);
      await expect(RelayTestClient.open(relay.url)).rejects.toThrow();
      for (const client of clients.slice(1)) expect(await client.next(5_000)).toEqual(CLOSE_MESSAGE);
      for (const client of clients) await client.closed;
      // Spread over the 1.5 s window (five peers: 300 ms apart), not all at once.
      expect(closedAt).toHaveLength(5);
      expect(Math.max(...closedAt) - Math.min(...closedAt)).toBeGreaterThan(600);
      const exit = await relay.exited;
      expect(exit.code).toBe(0);
      expect(relay.output).toContain('relay stopped');
    } finally {
      await relay.stop();
    }
  });
});
