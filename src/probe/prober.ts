import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { ReconnectBackoffOptions } from '../client/reconnect-backoff.js';
import type { RelayAuth } from '../client/relay-auth.js';
import { RelayManager, type RelayManagerOptions } from '../client/relay-manager.js';
import { decodeProbePacket, encodeProbePacket } from './probe-packet.js';
import { ProbeLink } from './probe-link.js';
import { ProbeMetrics } from './probe-metrics.js';

export interface ProbeOptions {
  /** Relay URLs: one public URL, or several (pod URLs) to pin client i to urls[i % n]. */
  urls: string[];
  auth: RelayAuth;
  /** Time between probe packets (default 1 s). */
  intervalMs?: number;
  /** A packet unanswered for this long counts as lost (default max(1 s, 3 intervals)). */
  lossTimeoutMs?: number;
  /** How often client B reconnects on purpose to time the notice A gets (default 60 s; 0: never). */
  peerReconnectIntervalMs?: number;
  /** How long A may take to be told of B's reconnect before it counts as missed (default 30 s). */
  peerReconnectNoticeTimeoutMs?: number;
  /** Wait for the other client to be online when (re)opening (default 30 s). */
  openTimeoutMs?: number;
  registry?: Registry;
  logger?: Logger;
  client?: RelayManagerOptions['client'];
  backoff?: Partial<ReconnectBackoffOptions>;
}

export interface ProbeEvents {
  roundTrip: [rttSeconds: number];
  lost: [seq: number];
  /** Seconds until A was told of B's reconnect; undefined when it was never told. */
  peerReconnectNotice: [seconds: number | undefined];
}

export interface RunningProbe extends EventEmitter<ProbeEvents> {
  readonly registry: Registry;
  /** Runs one deliberate reconnect of client B now and reports the notice time (seconds) or undefined. */
  measurePeerReconnectNotice(): Promise<number | undefined>;
  stop(): Promise<void>;
}

interface ProbeClient {
  readonly name: 'a' | 'b';
  readonly identity: string;
  readonly manager: RelayManager;
  deliberateReconnect: boolean;
}

const silentLogger = pino({ level: 'silent' });

/**
 * Two relay clients that exchange packets through the relay continuously:
 * A pings B, B answers; RTT, loss and reconnects become Prometheus metrics.
 * Every peerReconnectIntervalMs B reconnects with the same identity, and the
 * prober times how long A takes to be told (offline, then online again).
 */
export async function startProbe(options: ProbeOptions): Promise<RunningProbe> {
  if (options.urls.length === 0) throw new RangeError('startProbe: at least one relay URL is required');
  const registry = options.registry ?? new Registry();
  const metrics = new ProbeMetrics(registry);
  const baseLogger = options.logger ?? silentLogger;
  const logger = baseLogger.child({ component: 'probe' });
  const intervalMs = options.intervalMs ?? 1_000;
  const lossTimeoutMs = options.lossTimeoutMs ?? Math.max(1_000, 3 * intervalMs);
  const reconnectEveryMs = options.peerReconnectIntervalMs ?? 60_000;
  const noticeTimeoutMs = options.peerReconnectNoticeTimeoutMs ?? 30_000;
  const events = new EventEmitter<ProbeEvents>();
  const run = randomUUID();

  const makeClient = (name: 'a' | 'b', index: number): ProbeClient => {
    const identity = `nb-cluster-relay-probe-${run}-${name}`;
    const manager = new RelayManager({
      homeUrl: options.urls[index % options.urls.length] as string,
      peer: identity,
      auth: options.auth,
      logger: baseLogger,
      ...(options.client ? { client: options.client } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    const client: ProbeClient = { name, identity, manager, deliberateReconnect: false };
    manager.on('homeReconnected', () => {
      if (!client.deliberateReconnect) metrics.reconnects.inc({ client: name });
    });
    return client;
  };
  const a = makeClient('a', 0);
  const b = makeClient('b', 1);
  metrics.success.set(0);
  metrics.reconnects.inc({ client: 'a' }, 0);
  metrics.reconnects.inc({ client: 'b' }, 0);

  const pending = new Map<number, number>();
  let seq = 0;
  const linkOptions = { openTimeoutMs: options.openTimeoutMs ?? 30_000, retryDelayMs: 250, logger };
  const aToB = new ProbeLink({
    ...linkOptions,
    name: 'a->b',
    manager: a.manager,
    remote: b.identity,
    remoteRelayUrl: () => b.manager.homeInstanceUrl,
    onPayload: (payload) => {
      const packet = decodeProbePacket(payload);
      const sentAt = packet?.kind === 'pong' ? pending.get(packet.seq) : undefined;
      if (packet === undefined || sentAt === undefined) return;
      pending.delete(packet.seq);
      const rtt = (performance.now() - sentAt) / 1000;
      metrics.rtt.observe(rtt);
      metrics.success.set(1);
      events.emit('roundTrip', rtt);
    },
  });
  const bToA = new ProbeLink({
    ...linkOptions,
    name: 'b->a',
    manager: b.manager,
    remote: a.identity,
    remoteRelayUrl: () => a.manager.homeInstanceUrl,
    onPayload: (payload) => {
      const packet = decodeProbePacket(payload);
      if (packet?.kind !== 'ping') return;
      try {
        bToA.connection?.send(encodeProbePacket({ kind: 'pong', seq: packet.seq }));
      } catch {
        // The connection closed under us: the ping counts as lost.
      }
    },
  });

  const tick = (): void => {
    const now = performance.now();
    for (const [lostSeq, sentAt] of pending) {
      if (now - sentAt < lossTimeoutMs) break;
      pending.delete(lostSeq);
      metrics.lost.inc();
      metrics.success.set(0);
      events.emit('lost', lostSeq);
    }
    const connection = aToB.connection;
    if (!connection) {
      metrics.success.set(0);
      return;
    }
    seq = (seq + 1) >>> 0;
    try {
      connection.send(encodeProbePacket({ kind: 'ping', seq }));
      pending.set(seq, now);
      metrics.sent.inc();
    } catch {
      metrics.success.set(0);
    }
  };

  let measuring = false;
  const measurePeerReconnectNotice = async (): Promise<number | undefined> => {
    if (measuring || !b.manager.ready || !aToB.connection) return undefined;
    measuring = true;
    const startedAt = performance.now();
    let finish!: (seconds: number | undefined) => void;
    const told = new Promise<number | undefined>((resolve) => (finish = resolve));
    let sawOffline = false;
    const onClosed = (reason: string): void => {
      if (reason === 'peer_offline') sawOffline = true;
      else finish(undefined);
    };
    const onOpened = (): void => {
      if (sawOffline) finish((performance.now() - startedAt) / 1000);
    };
    aToB.on('closed', onClosed);
    aToB.on('opened', onOpened);
    const timer = setTimeout(() => finish(undefined), noticeTimeoutMs);
    try {
      b.deliberateReconnect = true;
      try {
        await b.manager.reconnectHome();
      } finally {
        b.deliberateReconnect = false;
      }
      const seconds = await told;
      if (seconds === undefined) {
        if (!sawOffline && aToB.connection) {
          // A was never told: its connection to B is stale. Drop it so the link reopens.
          metrics.peerReconnectNoticeMissed.inc();
          logger.warn('peer reconnect notice missed: A still holds a connection to the old session of B');
          aToB.connection.close();
        }
      } else {
        metrics.peerReconnectNotice.observe(seconds);
      }
      events.emit('peerReconnectNotice', seconds);
      return seconds;
    } catch (err) {
      logger.warn({ err }, 'deliberate reconnect of probe client b failed');
      return undefined;
    } finally {
      clearTimeout(timer);
      aToB.off('closed', onClosed);
      aToB.off('opened', onOpened);
      measuring = false;
    }
  };

  await Promise.all(
    [a, b].map((client) =>
      client.manager.start().catch((err: unknown) => {
        logger.warn({ client: client.name, err }, 'probe client could not connect yet');
      }),
    ),
  );
  aToB.start();
  bToA.start();
  const tickTimer = setInterval(tick, intervalMs);
  const reconnectTimer =
    reconnectEveryMs > 0 ? setInterval(() => void measurePeerReconnectNotice(), reconnectEveryMs) : undefined;

  const probe = Object.assign(events, {
    registry,
    measurePeerReconnectNotice,
    async stop(): Promise<void> {
      clearInterval(tickTimer);
      if (reconnectTimer) clearInterval(reconnectTimer);
      await Promise.all([aToB.stop(), bToA.stop()]);
      await Promise.all([a.manager.stop(), b.manager.stop()]);
    },
  });
  return probe;
}
