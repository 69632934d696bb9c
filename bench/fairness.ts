/**
 * Fairness of the mesh: one pair floods pod 0 → pod 1 as fast as its sender
 * goes (open loop, far beyond what the link carries) while a second pair on
 * the same two pods sends 200 msg/s. The quiet pair should lose nothing; the
 * flood's losses fall on itself. Reports both pairs' sent / lost and the
 * quiet pair's latency.
 *
 *   npm run bench:fairness           BENCH_SECONDS=5
 */
import { buildLoadgen, runLoadgen, type Json } from './lib/loadgen.js';
import { LoadMonitor, describeMachine, fmt, markdownTable, waitForQuiet, writeJson } from './lib/report.js';
import { SECRET, startCluster } from './lib/servers.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const FLOOD_RATE = Number(process.env.BENCH_FLOOD_RATE ?? 2_000_000);
const QUIET_RATE = 200;

buildLoadgen();
await waitForQuiet();
const load = new LoadMonitor();
const cluster = await startCluster(3);
let flood: Json;
let quiet: Json;
try {
  const common = (rate: number, run: string): string[] => [
    '-send-urls',
    cluster.urls[0]!,
    '-recv-urls',
    cluster.urls[1]!,
    '-pairs',
    '1',
    '-rate',
    String(rate),
    '-duration',
    `${SECONDS}s`,
    '-warmup',
    '1s',
    '-secret',
    SECRET,
    '-run',
    run,
  ];
  [flood, quiet] = await Promise.all([
    runLoadgen('throughput', common(FLOOD_RATE, 'flood')),
    runLoadgen('throughput', common(QUIET_RATE, 'quiet')),
  ]);
} finally {
  await cluster.stop();
}
const loadSeen = load.stop();
const rows = [
  ['flood (open loop)', flood.sent, flood.lost, fmt(flood.messagesPerSecond), '–'],
  [
    `quiet pair, ${QUIET_RATE} msg/s`,
    quiet.sent,
    quiet.lost,
    fmt(quiet.messagesPerSecond),
    `${fmt(quiet.latency?.p50Us)} / ${fmt(quiet.latency?.p99Us)}`,
  ],
];
console.log(markdownTable(['flow (pod 0 → pod 1)', 'sent', 'lost', 'received msg/s', 'p50 / p99 µs'], rows));
console.log(`load ${JSON.stringify(loadSeen)}`);
console.log(`wrote ${writeJson('fairness', { machine: describeMachine(), load: loadSeen, flood, quiet })}`);
