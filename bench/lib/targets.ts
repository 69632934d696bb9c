/**
 * The server configurations the data-path benchmarks compare, each started
 * only while it is measured: our standalone relay, our cluster with sender
 * and receiver on the same pod and on different pods, NetBird's relay, and
 * the raw TCP splice.
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

export const ALL_KEYS = ['ours', 'cluster-same', 'cluster-cross', 'netbird', 'splice'] as const;
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
