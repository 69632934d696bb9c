/**
 * Latency: one-way latency (generator -> server -> generator, one clock) of
 * 1,400-byte transport messages at half of each server's maximum rate, with
 * 8 pairs sending at a fixed total rate (open loop). The maximum is measured
 * first in a short closed-loop run. Same-pod and cross-pod are then compared
 * at one common rate (half the smaller of the two maxima), which gives the
 * latency the mesh hop adds. Every server but the same-pod cluster also runs
 * at one fixed rate (BENCH_LATENCY_FIXED_RATE, default 20,000 msg/s) for a
 * like-for-like comparison (issue 16: ours standalone and cross-pod against
 * NetBird's one process).
 *
 *   npm run bench:latency            BENCH_SECONDS=5 BENCH_SERVERS=...
 */
import { buildLoadgen } from './lib/loadgen.js';
import { measureThroughput, type ThroughputRow } from './lib/measure.js';
import {
  LoadMonitor,
  barChartSvg,
  describeMachine,
  fmt,
  markdownTable,
  waitForQuiet,
  writeJson,
  writeText,
} from './lib/report.js';
import { forEachTarget } from './lib/targets.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PAIRS = Number(process.env.BENCH_LATENCY_PAIRS ?? 8);
/** A rate every server sustains, for a like-for-like comparison (0 = skip). */
const COMMON = Number(process.env.BENCH_LATENCY_FIXED_RATE ?? 20_000);

buildLoadgen();
await waitForQuiet();
const load = new LoadMonitor();
const maxima: Record<string, number> = {};
const rows: (ThroughputRow & { maxRate: number; kind: string })[] = [];
let clusterMax: number | undefined;
await forEachTarget(async (t) => {
  const max = await measureThroughput(t, PAIRS, { seconds: 2, warmup: 1 });
  maxima[t.key] = max.messagesPerSecond;
  const half = await measureThroughput(t, PAIRS, {
    seconds: SECONDS,
    warmup: 1,
    rate: max.messagesPerSecond / 2,
  });
  rows.push({ ...half, maxRate: max.messagesPerSecond, kind: 'half of own max' });
  if (COMMON > 0 && t.key !== 'cluster-same') {
    const c = await measureThroughput(t, PAIRS, { seconds: SECONDS, warmup: 1, rate: COMMON });
    rows.push({ ...c, maxRate: max.messagesPerSecond, kind: 'fixed rate' });
    console.error(
      `${t.label.padEnd(26)} at fixed ${fmt(COMMON)} msg/s: p50 ${c.latency.p50Us} µs, p99 ${c.latency.p99Us} µs, p999 ${c.latency.p999Us} µs`,
    );
  }
  console.error(
    `${t.label.padEnd(26)} max ${fmt(max.messagesPerSecond)} msg/s; at ${fmt(half.rate)}: p50 ${half.latency.p50Us} µs, p99 ${half.latency.p99Us} µs, p999 ${half.latency.p999Us} µs`,
  );
  if (t.key === 'cluster-cross' && maxima['cluster-same'] !== undefined) {
    // Same-pod vs cross-pod at one common rate.
    clusterMax = Math.min(maxima['cluster-same'], maxima['cluster-cross']!);
    const rate = clusterMax / 2;
    for (const key of ['cluster-same', 'cluster-cross'] as const) {
      const args =
        key === 'cluster-same' ? ['-send-urls', t.server.urls[0]!, '-recv-urls', t.server.urls[0]!] : t.args;
      const label = key === 'cluster-same' ? 'ours cluster, same pod' : 'ours cluster, cross-pod';
      const r = await measureThroughput({ ...t, key, label, args }, PAIRS, {
        seconds: SECONDS,
        warmup: 1,
        rate,
      });
      rows.push({ ...r, maxRate: clusterMax, kind: 'common rate' });
      console.error(
        `${key.padEnd(26)} at common ${fmt(rate)} msg/s: p50 ${r.latency.p50Us} µs, p99 ${r.latency.p99Us} µs`,
      );
    }
  }
});
const loadDuring = load.stop();

const common = (key: string) => rows.find((r) => r.kind === 'common rate' && r.target === key);
const same = common('cluster-same');
const cross = common('cluster-cross');
const added =
  same && cross
    ? {
        rate: cross.rate,
        p50Us: Number((cross.latency.p50Us - same.latency.p50Us).toFixed(1)),
        p99Us: Number((cross.latency.p99Us - same.latency.p99Us).toFixed(1)),
        p999Us: Number((cross.latency.p999Us - same.latency.p999Us).toFixed(1)),
      }
    : undefined;

const table = markdownTable(
  ['server', 'rate (msg/s)', 'of max', 'p50 µs', 'p99 µs', 'p999 µs', 'max µs', 'lost'],
  rows.map((r) => [
    r.kind === 'common rate'
      ? `${r.label} (same/cross common rate)`
      : r.kind === 'fixed rate'
        ? `${r.label} (fixed rate)`
        : r.label,
    fmt(r.rate),
    fmt(r.maxRate),
    fmt(r.latency.p50Us),
    fmt(r.latency.p99Us),
    fmt(r.latency.p999Us),
    fmt(r.latency.maxUs),
    fmt(r.lost),
  ]),
);
console.log(table);
if (added)
  console.log(
    `\ncross-pod adds p50 ${added.p50Us} µs, p99 ${added.p99Us} µs, p999 ${added.p999Us} µs at ${fmt(added.rate)} msg/s`,
  );
const machine = describeMachine();
console.log(`machine: ${machine.cpu} x${machine.cores}, ${machine.node}; load ${JSON.stringify(loadDuring)}`);
const own = rows.filter((r) => r.kind === 'half of own max');
writeText(
  'latency.svg',
  barChartSvg(
    `One-way latency at half of each server's max rate (${PAIRS} pairs, 1,400-byte payloads)`,
    (['p50Us', 'p99Us', 'p999Us'] as const).map((q) => ({
      title: q.replace('Us', ''),
      unit: 'µs',
      groups: own.map((r) => r.label),
      series: [{ name: q.replace('Us', ''), values: own.map((r) => r.latency[q] as number) }],
    })),
    `${machine.cpu} x${machine.cores}, ${machine.node}; generator and servers share the machine`,
  ),
);
const path = writeJson('latency', {
  machine,
  load: loadDuring,
  settings: { seconds: SECONDS, pairs: PAIRS },
  maxima,
  rows,
  crossPodAdded: added,
  markdown: table,
});
console.log(`wrote ${path} and bench/results/latency.svg`);
