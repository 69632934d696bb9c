import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { startProbe, type ProbeOptions, type RunningProbe } from '../../src/probe/prober.js';
import { startClusterTarget, startNetbirdTarget } from '../client/support/relay-targets.js';
import { freePort } from '../support/free-port.js';
import { startInProcessRelay, TEST_SECRET, type InProcessRelay } from '../support/in-process-relay.js';
import { metricValue } from '../support/metric-value.js';
import { eventually } from '../support/eventually.js';
import { TcpForwarder } from '../support/tcp-forwarder.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FAST: Partial<ProbeOptions> = {
  intervalMs: 50,
  lossTimeoutMs: 500,
  peerReconnectIntervalMs: 0,
  peerReconnectNoticeTimeoutMs: 2_000,
  backoff: { quickRetryMs: 100, initialMs: 200, maxMs: 1_000 },
};

async function probe(
  urls: string[],
  secret: string,
  extra: Partial<ProbeOptions> = {},
): Promise<RunningProbe> {
  const running = await startProbe({ urls, auth: { secret }, ...FAST, ...extra });
  cleanups.push(() => running.stop());
  return running;
}

async function roundTrips(running: RunningProbe, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await once(running, 'roundTrip', { signal: AbortSignal.timeout(15_000) });
}

const value = (running: RunningProbe, name: string, labels: Record<string, string> = {}) =>
  metricValue(running.registry, name, labels);

describe('prober against a standalone relay', () => {
  it('measures round trips and the reconnect notice, and recovers after the relay restarts', async () => {
    const port = await freePort();
    const env = { NB_LISTEN_ADDRESS: `127.0.0.1:${port}` };
    let relay: InProcessRelay = await startInProcessRelay(env);
    cleanups.push(() => relay.stop());
    const running = await probe([relay.url], TEST_SECRET);

    await roundTrips(running, 3);
    expect(await value(running, 'relay_probe_success')).toBe(1);
    expect(await value(running, 'relay_probe_sent_total')).toBeGreaterThanOrEqual(3);
    expect(await running.registry.metrics()).toMatch(/relay_probe_rtt_seconds_count [1-9]/);

    const seconds = await running.measurePeerReconnectNotice();
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(2);
    const metrics = await running.registry.metrics();
    expect(metrics).toMatch(/relay_probe_peer_reconnect_notice_seconds_count 1/);
    expect(await value(running, 'relay_probe_peer_reconnect_notice_missed_total')).toBe(0);
    // A deliberate reconnect is not a relay drop.
    expect(await value(running, 'relay_probe_reconnects_total')).toBe(0);

    await relay.stop();
    await eventually(async () => (await value(running, 'relay_probe_success')) === 0, 10_000, 'success 0');
    relay = await startInProcessRelay(env);
    await eventually(
      async () =>
        (await value(running, 'relay_probe_reconnects_total', { client: 'a' })) >= 1 &&
        (await value(running, 'relay_probe_reconnects_total', { client: 'b' })) >= 1,
      15_000,
      'both probe clients reconnected',
    );
    await roundTrips(running, 3);
    expect(await value(running, 'relay_probe_success')).toBe(1);
  }, 60_000);
});

describe('prober against a cluster of three relay processes', () => {
  it('pins its clients to two pods, and recovers when one pod is killed', async () => {
    const cluster = await startClusterTarget();
    cleanups.push(() => cluster.stop());
    const [pod0, pod1, pod2] = cluster.pods;
    // Client B dials a stable address (a Service) that currently reaches pod 1.
    const service = await TcpForwarder.start(pod1!.process.port);
    cleanups.push(() => service.close());
    const running = await probe([pod0!.process.url, service.url], cluster.secret);

    await roundTrips(running, 3);
    expect(await running.measurePeerReconnectNotice()).toBeGreaterThan(0);
    expect(await value(running, 'relay_probe_peer_reconnect_notice_missed_total')).toBe(0);

    const killedAt = Date.now();
    service.targetPort = pod2!.process.port;
    pod1!.process.kill('SIGKILL');
    await eventually(
      async () => (await value(running, 'relay_probe_reconnects_total', { client: 'b' })) >= 1,
      15_000,
      'client b reconnected through the service to another pod',
    );
    await roundTrips(running, 3);
    const recoveredMs = Date.now() - killedAt;
    console.log(
      `[probe cluster] recovered ${recoveredMs} ms after pod kill; lost=${await value(running, 'relay_probe_lost_total')} sent=${await value(running, 'relay_probe_sent_total')}`,
    );
    expect(await value(running, 'relay_probe_success')).toBe(1);
    expect(await value(running, 'relay_probe_reconnects_total', { client: 'a' })).toBe(0);
  }, 120_000);
});

describe("prober against NetBird's relay (recorded, not asserted)", () => {
  it('records whether the reconnect notice reaches the other client', async () => {
    const netbird = await startNetbirdTarget();
    cleanups.push(() => netbird.stop());
    const running = await probe(netbird.urls, netbird.secret, { peerReconnectNoticeTimeoutMs: 1_000 });
    await roundTrips(running, 3);
    const results: (number | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      results.push(await running.measurePeerReconnectNotice());
      await roundTrips(running, 1);
    }
    console.log(
      `[probe netbird] reconnect notices: ${JSON.stringify(results.map((r) => (r === undefined ? 'missed' : `${(r * 1000).toFixed(1)} ms`)))}; missed_total=${await value(running, 'relay_probe_peer_reconnect_notice_missed_total')}`,
    );
    // Ours: the prober notices and recovers either way.
    expect(await value(running, 'relay_probe_success')).toBe(1);
  }, 120_000);
});
