/**
 * The server configurations the data-path benchmarks compare, each started
 * only while it is measured: our standalone relay, our cluster with sender
 * and receiver on the same pod and on different pods, NetBird's relay, and
 * the raw TCP splice. "cluster-random" places each pair's two peers on
 * random pods of three (a load balancer's view: two thirds cross pods).
 */
import {
  startCluster,
  startNetbird,
  startOurs,
  startSplice,
  type Server,
  type OurRelayOptions,
} from './servers.js';

export interface Target {
  key: string;
  label: string;
  server: Server;
  /** Loadgen arguments that pick where senders and receivers connect. */
  args: string[];
}

export const ALL_KEYS = [
  'ours',
  'cluster-same',
  'cluster-cross',
  'cluster-random',
  'netbird',
  'splice',
] as const;
export type TargetKey = (typeof ALL_KEYS)[number];

export function selectedKeys(): TargetKey[] {
  const wanted = process.env.BENCH_SERVERS?.split(',').map((s) => s.trim());
  return ALL_KEYS.filter((k) => !wanted || wanted.includes(k));
}

/**
 * Runs `body` for every selected target, starting each server once (the two
 * cluster targets share one cluster) and stopping it afterwards.
 */
export async function forEachTarget(
  body: (t: Target) => Promise<void>,
  options: OurRelayOptions = {},
  keys: readonly TargetKey[] = selectedKeys(),
): Promise<void> {
  if (keys.includes('ours')) {
    const s = await startOurs(options);
    try {
      await body({ key: 'ours', label: 'ours standalone', server: s, args: ['-send-urls', s.urls[0]!] });
    } finally {
      await s.stop();
    }
  }
  if (keys.includes('cluster-random')) {
    const s = await startCluster(3, options);
    try {
      await body({
        key: 'cluster-random',
        label: 'ours 3-pod cluster, random placement',
        server: s,
        args: randomPlacement(s.urls),
      });
    } finally {
      await s.stop();
    }
  }
  if (keys.includes('cluster-same') || keys.includes('cluster-cross')) {
    const s = await startCluster(3, options);
    try {
      if (keys.includes('cluster-same'))
        await body({
          key: 'cluster-same',
          label: 'ours cluster, same pod',
          server: s,
          args: ['-send-urls', s.urls[0]!, '-recv-urls', s.urls[0]!],
        });
      if (keys.includes('cluster-cross'))
        await body({
          key: 'cluster-cross',
          label: 'ours cluster, cross-pod',
          server: s,
          args: ['-send-urls', s.urls[0]!, '-recv-urls', s.urls[1]!],
        });
    } finally {
      await s.stop();
    }
  }
  if (keys.includes('netbird')) {
    const s = await startNetbird();
    try {
      await body({
        key: 'netbird',
        label: 'NetBird relay v0.77.1',
        server: s,
        args: ['-send-urls', s.urls[0]!],
      });
    } finally {
      await s.stop();
    }
  }
  if (keys.includes('splice')) {
    const s = await startSplice();
    try {
      await body({ key: 'splice', label: 'raw TCP splice (Node)', server: s, args: ['-raw', s.raw!] });
    } finally {
      await s.stop();
    }
  }
}

/** Pods for 64 pairs' senders and receivers, drawn uniformly but the same every run (fixed seed). */
function randomPlacement(urls: readonly string[]): string[] {
  let state = 0x9e3779b9;
  const draw = (): string => {
    // xorshift32: a fixed sequence, so every run measures the same placement.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return urls[(state >>> 0) % urls.length]!;
  };
  const senders: string[] = [];
  const receivers: string[] = [];
  for (let i = 0; i < 64; i++) {
    senders.push(draw());
    receivers.push(draw());
  }
  return ['-send-urls', senders.join(','), '-recv-urls', receivers.join(',')];
}
