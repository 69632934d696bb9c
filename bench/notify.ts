/**
 * Notification latency while peers reconnect: 500 target peers each open a
 * new session with their peer ID once a second (500 reconnects/s, the old
 * session still open: the replace case), alternating between two pods;
 * subscribers on a third pod time "went offline" and "online" against the
 * start of the reconnect. The same load runs against one standalone process
 * and NetBird's relay for comparison.
 *
 *   npm run bench:notify             BENCH_NOTIFY_RATE=500 BENCH_NOTIFY_SECONDS=10
 */
import { buildLoadgen, runLoadgen, type Json } from './lib/loadgen.js';
import { sleep } from './lib/proc.js';
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
import { SECRET, startCluster, startNetbird, startOurs, type Server } from './lib/servers.js';

const RATE = Number(process.env.BENCH_NOTIFY_RATE ?? 500);
const TARGETS = Number(process.env.BENCH_NOTIFY_TARGETS ?? 500);
const SECONDS = Number(process.env.BENCH_NOTIFY_SECONDS ?? 10);
const wanted = (process.env.BENCH_SERVERS ?? 'cluster,ours,netbird').split(',');

const configs: [string, string, () => Promise<Server>, (s: Server) => string[]][] = [
  [
    'cluster',
    'ours cluster, cross-pod (targets on pods 0+2, subscribers on pod 1)',
    () => startCluster(3),
    (s) => ['-target-urls', `${s.urls[0]},${s.urls[2]}`, '-sub-urls', s.urls[1]!],
  ],
  [
    'ours',
    'ours standalone',
    () => startOurs(),
    (s) => ['-target-urls', s.urls[0]!, '-sub-urls', s.urls[0]!],
  ],
  [
    'netbird',
    'NetBird relay v0.77.1',
    () => startNetbird(),
    (s) => ['-target-urls', s.urls[0]!, '-sub-urls', s.urls[0]!],
  ],
];

buildLoadgen();
await waitForQuiet();
const load = new LoadMonitor();
const rows: (Json & { label: string; key: string })[] = [];
for (const [key, label, start, args] of configs) {
  if (!wanted.includes(key)) continue;
  const server = await start();
  try {
    const r = await runLoadgen('notify', [
      ...args(server),
      '-targets',
      String(TARGETS),
      '-rate',
      String(RATE),
      '-duration',
      `${SECONDS}s`,
      '-secret',
      SECRET,
    ]);
    rows.push({ ...r, label, key });
    console.error(
      `${label}: ${fmt(r.reconnectsPerSecond)} reconnects/s; online notice p50 ${r.onlineNotice.p50Us} µs p99 ${r.onlineNotice.p99Us} µs; ` +
        `offline p99 ${r.offlineNotice.p99Us} µs; missing offline ${r.missingOffline}, online ${r.missingOnline}, online-before-offline ${r.onlineBeforeOffline}`,
    );
  } finally {
    await server.stop();
  }
  await sleep(1_000);
}
const loadDuring = load.stop();
const ms = (us: number | undefined): string => (us === undefined ? '–' : (us / 1000).toFixed(2));
const table = markdownTable(
  [
    'server',
    'reconnects/s',
    'rounds',
    'handshake p50/p99 ms',
    'offline notice p50/p99/p999 ms',
    'online notice p50/p99/p999 ms',
    'online after auth p99 ms',
    'missing offline',
    'missing online (targets)',
    'online before offline',
  ],
  rows.map((r) => [
    r.label,
    fmt(r.reconnectsPerSecond),
    fmt(r.rounds),
    `${ms(r.handshake.p50Us)} / ${ms(r.handshake.p99Us)}`,
    `${ms(r.offlineNotice.p50Us)} / ${ms(r.offlineNotice.p99Us)} / ${ms(r.offlineNotice.p999Us)}`,
    `${ms(r.onlineNotice.p50Us)} / ${ms(r.onlineNotice.p99Us)} / ${ms(r.onlineNotice.p999Us)}`,
    ms(r.onlineAfterAuth.p99Us),
    fmt(r.missingOffline),
    `${fmt(r.missingOnline)} (${fmt(r.targetsMissingOnline)})`,
    fmt(r.onlineBeforeOffline),
  ]),
);
console.log(table);
console.log('latencies from the start of the reconnect (dial) to the notice at the subscriber');
const machine = describeMachine();
console.log(`machine: ${machine.cpu} x${machine.cores}, ${machine.node}; load ${JSON.stringify(loadDuring)}`);
writeText(
  'notify.svg',
  barChartSvg(
    `Peer-state notice latency at ${RATE} reconnects/s (from reconnect start)`,
    (['p50Us', 'p99Us', 'p999Us'] as const).map((q) => ({
      title: `online notice ${q.replace('Us', '')}`,
      unit: 'ms',
      groups: ['online notice', 'offline notice'],
      series: rows.map((r) => ({
        name: r.key,
        values: [r.onlineNotice[q] / 1000, r.offlineNotice[q] / 1000],
      })),
    })),
    `${machine.cpu} x${machine.cores}, ${machine.node}`,
  ),
);
const path = writeJson('notify', {
  machine,
  load: loadDuring,
  settings: { rate: RATE, targets: TARGETS, seconds: SECONDS },
  rows,
  markdown: table,
});
console.log(`wrote ${path} and bench/results/notify.svg`);
