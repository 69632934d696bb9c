import { startPod, type Pod } from '../../cluster/cluster-pods.js';
import { startInProcessRelay, TEST_SECRET } from '../../support/in-process-relay.js';
import { NO_PER_IP_LIMITS } from '../../support/loopback-limits.js';
import { RedisServer } from '../../support/redis-server.js';
import { startNetbirdRelay } from './netbird-relay.js';

/** A relay deployment the client scenarios run against. */
export interface RelayTarget {
  readonly name: string;
  readonly secret: string;
  /** Dialable relay URLs; scenario peer i connects to urls[i % urls.length]. */
  readonly urls: string[];
  /** Our relay (assert on its behaviour) or NetBird's (record only). */
  readonly ours: boolean;
  stop(): Promise<void>;
}

// The scenarios reconnect a thousand times in seconds, all from 127.0.0.1: no per-IP limits.
export async function startStandaloneTarget(): Promise<RelayTarget> {
  const relay = await startInProcessRelay(NO_PER_IP_LIMITS);
  return { name: 'standalone', secret: TEST_SECRET, urls: [relay.url], ours: true, stop: () => relay.stop() };
}

/** Three relay processes (dist/cli.js) sharing a private redis-server. */
export async function startClusterTarget(): Promise<RelayTarget & { pods: Pod[]; redis: RedisServer }> {
  const redis = await RedisServer.start();
  const pods: Pod[] = [];
  try {
    for (const name of ['client-pod-0', 'client-pod-1', 'client-pod-2']) {
      pods.push(await startPodRetryingPortClash(name, { NB_REDIS_URL: redis.url, ...NO_PER_IP_LIMITS }));
    }
  } catch (err) {
    await Promise.all(pods.map((pod) => pod.process.stop()));
    await redis.stop();
    throw err;
  }
  return {
    name: 'cluster',
    secret: TEST_SECRET,
    urls: pods.map((pod) => pod.process.url),
    ours: true,
    pods,
    redis,
    stop: async () => {
      await Promise.all(pods.map((pod) => pod.process.stop()));
      await redis.stop();
    },
  };
}

/**
 * RelayProcess picks free ports and releases them before the child binds
 * them; on a machine shared with other suites one is sometimes taken in
 * between. Such a clash is retried with new ports.
 */
async function startPodRetryingPortClash(name: string, env: Record<string, string>): Promise<Pod> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPod(name, env);
    } catch (err) {
      if (attempt >= 6 || !String((err as Error).message).includes('EADDRINUSE')) throw err;
    }
  }
}

export async function startNetbirdTarget(): Promise<RelayTarget> {
  const secret = 'netbird-relay-client-test-secret';
  const relay = await startNetbirdRelay(secret);
  return { name: 'netbird', secret, urls: [relay.url], ours: false, stop: () => relay.stop() };
}
