import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RelayClient } from '../../src/client/relay-client.js';
import { RelayManager } from '../../src/client/relay-manager.js';
import { DEFAULT_MANAGER_TUNING, resolveManagerTuning } from '../../src/client/relay-manager-options.js';
import { systemClock } from '../../src/time/clock.js';
import { freePort } from '../support/free-port.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { nextPayload } from './support/peer-connection-helpers.js';
import { acceptAuth, FakeRelayServer } from './support/fake-relay-server.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function capturingLogger(): { logger: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** A standalone relay whose instance URL is its own dialable address (foreign relays are dialled by it). */
async function dialableRelay(): Promise<InProcessRelay> {
  const port = await freePort();
  const relay = await startInProcessRelay({
    NB_LISTEN_ADDRESS: `127.0.0.1:${port}`,
    NB_EXPOSED_ADDRESS: `rel://127.0.0.1:${port}`,
  });
  cleanups.push(() => relay.stop());
  return relay;
}

describe('manager options', () => {
  it("defaults to NetBird's values", () => {
    expect(DEFAULT_MANAGER_TUNING).toEqual({
      mtu: 1280,
      cleanupIntervalMs: 60_000,
      unusedServerTimeMs: 5_000,
    });
    expect(new RelayManager({ homeUrl: 'rel://x:1', peer: 'p', auth: { secret: 's' } }).tuning).toEqual(
      DEFAULT_MANAGER_TUNING,
    );
  });

  it.each([
    [100, 1280, true],
    [1279, 1280, true],
    [1280, 1280, false],
    [9000, 9000, false],
    [65535, 65535, false],
    [70000, 65535, true],
    [Number.NaN, 1280, true],
  ])('clamps MTU %d to %d (warning: %s)', (given, expected, warns) => {
    const { logger, lines } = capturingLogger();
    expect(resolveManagerTuning({ mtu: given }, logger).mtu).toBe(expected);
    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings.length).toBe(warns ? 1 : 0);
    if (warns) expect(warnings[0]?.msg).toContain('MTU out of range');
  });

  it('applies the clamp to each manager instance separately', () => {
    const { logger, lines } = capturingLogger();
    const small = new RelayManager({
      homeUrl: 'rel://x:1',
      peer: 'p',
      auth: { secret: 's' },
      mtu: 576,
      logger,
    });
    const large = new RelayManager({
      homeUrl: 'rel://x:1',
      peer: 'q',
      auth: { secret: 's' },
      mtu: 8000,
      logger,
    });
    expect([small.tuning.mtu, large.tuning.mtu]).toEqual([1280, 8000]);
    expect(lines.filter((line) => line.level === 40)).toHaveLength(1);
  });

  it('rejects non-positive intervals', () => {
    expect(() => resolveManagerTuning({ cleanupIntervalMs: 0 })).toThrow(/cleanupIntervalMs/);
  });
});

describe('home relay reconnect (fake timers)', () => {
  it.each([
    ['low', 0],
    ['high', 1 - Number.EPSILON],
  ])(
    'quick retry at 1.5 s, then 2 s doubling to 60 s with %s jitter; owners told; recovers',
    async (_label, r) => {
      const server = await FakeRelayServer.start(acceptAuth());
      cleanups.push(() => server.stop());
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const connects = vi.spyOn(RelayClient.prototype, 'connect');
      const manager = new RelayManager({
        homeUrl: server.url,
        peer: 'backoff-peer',
        auth: { secret: 'irrelevant' },
        backoff: { random: () => r },
      });
      cleanups.push(() => manager.stop());
      await manager.start();
      const connection = await manager.openConn('remote-peer');
      expect(connects).toHaveBeenCalledTimes(1);

      const reconnectedOnce = once(manager, 'homeDisconnected');
      await server.stop();
      await reconnectedOnce;
      // The owner of the open connection is told, so it can reopen later.
      expect(connection.closeReason).toBe('relay_disconnected');

      const factor = 1 + 0.5 * (2 * r - 1);
      const expectedDelays = [1_500, ...[2, 4, 8, 16, 32, 60, 60].map((s) => Math.round(s * 1_000 * factor))];
      for (const [attempt, delay] of expectedDelays.entries()) {
        const before = connects.mock.calls.length;
        await vi.advanceTimersByTimeAsync(delay - 1);
        expect(connects.mock.calls.length, `attempt ${attempt} not before ${delay} ms`).toBe(before);
        const failed = once(manager, 'reconnectFailed');
        await vi.advanceTimersByTimeAsync(1);
        expect(connects.mock.calls.length, `attempt ${attempt} at ${delay} ms`).toBe(before + 1);
        const [, failedAttempt, nextDelay] = (await failed) as [unknown, number, number];
        expect(failedAttempt).toBe(attempt + 1);
        expect(nextDelay).toBe(expectedDelays[attempt + 1] ?? Math.round(60_000 * factor));
      }

      await server.listen();
      const reconnected = once(manager, 'homeReconnected');
      await vi.advanceTimersByTimeAsync(Math.round(60_000 * factor));
      await reconnected;
      expect(manager.ready).toBe(true);
      expect(manager.reconnectAttempt).toBe(0);
      await expect(manager.openConn('remote-peer')).resolves.toBeDefined();
    },
    30_000,
  );
});

describe('foreign relays', () => {
  it('opens connections through a foreign relay and closes it once unused for unusedServerTime', async () => {
    const home = await dialableRelay();
    const foreign = await dialableRelay();
    const remote = await RelayClient.connect({
      url: foreign.url,
      peer: 'foreign-y',
      auth: { secret: TEST_SECRET },
    });
    cleanups.push(() => remote.close());
    // Real timers for the sockets, a hand-moved now() for the idle time; the test runs the
    // clean-up rounds itself (the background loop's first round would come after a minute).
    const clock = { ...systemClock, nowMs: Date.now(), now: () => clock.nowMs };
    const manager = new RelayManager({
      homeUrl: home.url,
      peer: 'manager-x',
      auth: { secret: TEST_SECRET },
      cleanupIntervalMs: 60_000,
      unusedServerTimeMs: 300,
      clock,
    });
    cleanups.push(() => manager.stop());
    await manager.start();
    expect(manager.homeInstanceUrl).toBe(home.url);

    const viaForeign = await manager.openConn('foreign-y', { relayUrl: remote.instanceUrl as string });
    expect(viaForeign.relayInstanceUrl).toBe(foreign.url);
    expect(manager.foreignRelayUrls()).toEqual([foreign.url]);
    const back = await remote.openConn('manager-x');
    const got = nextPayload(viaForeign);
    back.send(Buffer.from('over the foreign relay'));
    expect((await got).toString()).toBe('over the foreign relay');

    // In use: however long it has been, a clean-up round keeps the foreign client.
    const closedEvents: string[] = [];
    manager.on('foreignRelayClosed', (url, reason) => closedEvents.push(`${url} ${reason}`));
    clock.nowMs += 10_000;
    manager.cleanUpUnusedRelays();
    expect(manager.foreignRelayUrls()).toEqual([foreign.url]);
    expect(closedEvents).toEqual([]);

    // Unused from now: kept for 299 ms, closed at 300 ms.
    viaForeign.close();
    clock.nowMs += 299;
    manager.cleanUpUnusedRelays();
    expect(closedEvents).toEqual([]);
    clock.nowMs += 1;
    manager.cleanUpUnusedRelays();
    expect(closedEvents).toEqual([`${foreign.url} unused`]);
    expect(manager.foreignRelayUrls()).toEqual([]);
    // The foreign relay saw the session end: the remote peer is told.
    expect(await back.whenClosed()).toBe('peer_offline');
    // Still reachable on demand: the next open dials again.
    await expect(manager.openConn('foreign-y', { relayUrl: foreign.url })).resolves.toBeDefined();
    expect(manager.foreignRelayUrls()).toEqual([foreign.url]);
  });

  it('a foreign relay that failed to open a connection is still cleaned up', async () => {
    const home = await dialableRelay();
    const foreign = await dialableRelay();
    const manager = new RelayManager({
      homeUrl: home.url,
      peer: 'manager-z',
      auth: { secret: TEST_SECRET },
      cleanupIntervalMs: 50,
      unusedServerTimeMs: 100,
    });
    cleanups.push(() => manager.stop());
    await manager.start();
    await expect(manager.openConn('nobody', { relayUrl: foreign.url, timeoutMs: 50 })).rejects.toMatchObject({
      code: 'open_timeout',
    });
    expect(manager.foreignRelayUrls()).toEqual([foreign.url]);
    expect(await once(manager, 'foreignRelayClosed')).toEqual([foreign.url, 'unused']);
  });
});
