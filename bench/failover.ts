/**
 * Failover: 300 peers on pod 0 of a 3-pod cluster, one observer peer on each
 * of the other pods subscribed to all of them. Pod 0 gets kill -9; the time
 * runs from the moment its connections break until each observer has a
 * "went offline" notice for every one of those peers (target <= 3 s).
 *
 *   npm run bench:failover           BENCH_FAILOVER_PEERS=300 BENCH_FAILOVER_RUNS=3
 */
import { buildLoadgen, startLoadgen, type Json } from './lib/loadgen.js';
import { sleep } from './lib/proc.js';
import {
  LoadMonitor,
  describeMachine,
  fmt,
  markdownTable,
  waitForQuiet,
  writeJson,
  writeText,
  barChartSvg,
} from './lib/report.js';
import { SECRET, startCluster } from './lib/servers.js';

const PEERS = Number(process.env.BENCH_FAILOVER_PEERS ?? 300);
const RUNS = Number(process.env.BENCH_FAILOVER_RUNS ?? 3);

buildLoadgen();
await waitForQuiet();
const load = new LoadMonitor();
const runs: Json[] = [];
for (let i = 0; i < RUNS; i++) {
  const cluster = await startCluster(3);
  try {
    let killedAtMs = 0;
    const gen = startLoadgen(
      'failover',
      [
        '-victim-url',
        cluster.urls[0]!,
        '-observer-urls',
        `${cluster.urls[1]},${cluster.urls[2]}`,
        '-peers',
        String(PEERS),
        '-secret',
        SECRET,
      ],
      async (e) => {
        if (e.event === 'ready') {
          await sleep(500);
          killedAtMs = Date.now();
          cluster.pods[0]!.child.kill('SIGKILL');
        }
      },
    );
    const r = await gen.result;
    runs.push({ ...r, killedAtUnixMs: killedAtMs });
    console.error(
      `run ${i + 1}: offline everywhere after ${fmt(r.detectedEverywhereMs)} ms (missing ${r.missing}); ` +
        r.observers.map((o: Json) => `${fmt(o.allOfflineMs)} ms`).join(', '),
    );
  } finally {
    await cluster.stop();
  }
}
const loadDuring = load.stop();
const table = markdownTable(
  ['run', 'peers', 'observer', 'all offline after (ms)', 'notice p50 (ms)', 'missing'],
  runs.flatMap((r, i) =>
    r.observers.map((o: Json) => [
      i + 1,
      PEERS,
      o.observer,
      fmt(o.allOfflineMs),
      fmt(o.notices.p50Us / 1000),
      o.missing,
    ]),
  ),
);
const worst = Math.max(...runs.map((r) => r.detectedEverywhereMs));
console.log(table);
console.log(`\nworst: kill -9 detected everywhere after ${fmt(worst)} ms (target <= 3,000 ms)`);
const machine = describeMachine();
console.log(`machine: ${machine.cpu} x${machine.cores}, ${machine.node}; load ${JSON.stringify(loadDuring)}`);
writeText(
  'failover.svg',
  barChartSvg(
    `kill -9 of a pod with ${PEERS} peers: time until every observer has them offline`,
    [
      {
        title: 'detected everywhere',
        unit: 'ms',
        groups: runs.map((_, i) => `run ${i + 1}`),
        series: [{ name: 'ours cluster (3 pods)', values: runs.map((r) => r.detectedEverywhereMs) }],
      },
    ],
    `${machine.cpu} x${machine.cores}, ${machine.node}; target 3,000 ms`,
  ),
);
const path = writeJson('failover', {
  machine,
  load: loadDuring,
  settings: { peers: PEERS, runs: RUNS },
  runs,
  worstMs: worst,
  markdown: table,
});
console.log(`wrote ${path} and bench/results/failover.svg`);
