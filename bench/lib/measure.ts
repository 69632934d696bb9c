import { join } from 'node:path';
import { runLoadgen, type Json } from './loadgen.js';
import { cpuSeconds } from './proc.js';
import { SECRET } from './servers.js';
import type { Target } from './targets.js';

/** In-flight messages per pair in closed-loop runs. */
export const WINDOW = Number(process.env.BENCH_WINDOW ?? 64);

export interface ThroughputRow {
  target: string;
  label: string;
  pairs: number;
  rate?: number;
  messagesPerSecond: number;
  gbitPerSecond: number;
  relayCpuSeconds: number;
  relayCores: number;
  messagesPerRelayCpuSecond: number;
  cpuByProcess: Record<string, number>;
  lost: number;
  sent: number;
  latency: Json;
  seconds: number;
}

/** One throughput run against a target; relay CPU is sampled at the window's edges. */
export async function measureThroughput(
  t: Target,
  pairs: number,
  opts: { seconds: number; warmup: number; rate?: number; size?: number },
): Promise<ThroughputRow> {
  const procs = [
    ...t.server.pods.filter((p) => p.running),
    ...('redis' in t.server ? [(t.server as { redis: { name: string; pid: number } }).redis] : []),
  ];
  let before: number[] = [];
  let used: number[] = [];
  const args = [
    ...t.args,
    '-pairs',
    String(pairs),
    '-duration',
    `${opts.seconds}s`,
    '-warmup',
    `${opts.warmup}s`,
    '-secret',
    SECRET,
    '-size',
    String(opts.size ?? 1400),
    '-window',
    String(WINDOW),
  ];
  if (opts.rate) args.push('-rate', String(Math.round(opts.rate)));
  // Diagnosis of tails: every latency sample of open-loop runs, with its send time.
  const timelineDir = process.env.BENCH_TIMELINE_DIR;
  if (timelineDir && opts.rate)
    args.push('-timeline', join(timelineDir, `${t.key}-${pairs}-${Math.round(opts.rate)}.csv`));
  const r = await runLoadgen('throughput', args, (e) => {
    if (e.event === 'measure-start') before = procs.map((p) => cpuSeconds(p.pid));
    if (e.event === 'measure-end') used = procs.map((p, i) => cpuSeconds(p.pid) - before[i]!);
  });
  const cpu = used.reduce((a, b) => a + b, 0);
  const cpuByProcess: Record<string, number> = {};
  procs.forEach((p, i) => (cpuByProcess[p.name] = Number((used[i] ?? 0).toFixed(2))));
  return {
    target: t.key,
    label: t.label,
    pairs,
    rate: opts.rate,
    messagesPerSecond: r.messagesPerSecond,
    gbitPerSecond: r.gbitPerSecond,
    relayCpuSeconds: Number(cpu.toFixed(2)),
    relayCores: Number((cpu / r.seconds).toFixed(2)),
    messagesPerRelayCpuSecond: cpu > 0 ? Math.round(r.received / cpu) : 0,
    cpuByProcess,
    lost: r.lost,
    sent: r.sent,
    latency: r.latency,
    seconds: r.seconds,
  };
}
