/**
 * Rolling restart: 1,000 peers spread over a 3-pod cluster behind a simulated
 * load balancer. Pod by pod: take it out of the rotation, SIGTERM (graceful
 * drain: every peer gets the relay close message and reconnects, NetBird
 * style, after ~1.5 s through the balancer), wait for the exit, start it again
 * on the same ports and name, wait until ready, put it back. Then count peers
 * lost (target 0) and time until every peer is connected and reachable
 * (a transport message from each peer reaches the next one; target <= 10 s).
 *
 *   npm run bench:rolling            BENCH_ROLLING_PEERS=1000 BENCH_DRAIN_WINDOW=10s
 */
import { buildLoadgen, startLoadgen, type Json } from './lib/loadgen.js';
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
import { SECRET, startCluster } from './lib/servers.js';

const PEERS = Number(process.env.BENCH_ROLLING_PEERS ?? 1000);
const DRAIN = process.env.BENCH_DRAIN_WINDOW; // unset: the relay's default (10 s)

buildLoadgen();
await waitForQuiet();
const load = new LoadMonitor();
const cluster = await startCluster(3, DRAIN ? { env: { NB_DRAIN_WINDOW: DRAIN } } : {});
const steps: Json[] = [];
let result: Json;
const t0 = Date.now();
try {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const gen = startLoadgen(
    'rolling',
    ['-urls', cluster.urls.join(','), '-peers', String(PEERS), '-secret', SECRET],
    (e) => {
      if (e.event === 'ready') ready();
    },
  );
  await Promise.race([isReady, gen.result]);
  await sleep(1_000);
  const rolloutStart = Date.now();
  for (let i = 0; i < cluster.pods.length; i++) {
    const pod = cluster.pods[i]!;
    const others = cluster.pods.map((_, j) => j).filter((j) => j !== i);
    gen.send(`lb ${others.join(',')}`);
    const s = Date.now();
    const exit = await pod.stop('SIGTERM', 60_000);
    const stoppedMs = Date.now() - s;
    await pod.start();
    const readyMs = Date.now() - s;
    gen.send(`lb ${cluster.pods.map((_, j) => j).join(',')}`);
    steps.push({ pod: pod.name, exit, drainAndExitMs: stoppedMs, backReadyMs: readyMs });
    console.error(
      `${pod.name}: exit ${exit} after ${fmt(stoppedMs)} ms, ready again after ${fmt(readyMs)} ms`,
    );
  }
  const rolloutMs = Date.now() - rolloutStart;
  gen.send('done');
  result = { ...(await gen.result), rolloutMs, steps };
} finally {
  await cluster.stop();
}
const loadDuring = load.stop();
const table = markdownTable(
  [
    'peers',
    'drain window',
    'rollout (s)',
    'peers lost',
    'unreachable',
    'abrupt disconnects',
    'max down at once',
    'downtime p50/p99/max (s)',
    'all connected after rollout (s)',
    'all reachable after rollout (s)',
  ],
  [
    [
      PEERS,
      DRAIN ?? '10s (default)',
      (result.rolloutMs / 1000).toFixed(1),
      result.lost,
      result.unreachable,
      result.abruptDisconnects,
      result.maxDisconnectedAtOnce,
      `${(result.downtime.p50Us / 1e6).toFixed(2)} / ${(result.downtime.p99Us / 1e6).toFixed(2)} / ${(result.downtime.maxUs / 1e6).toFixed(2)}`,
      result.allConnectedAfterDoneMs === null ? 'never' : (result.allConnectedAfterDoneMs / 1000).toFixed(2),
      result.allReachableAfterDoneMs === null ? 'never' : (result.allReachableAfterDoneMs / 1000).toFixed(2),
    ],
  ],
);
console.log(table);
const machine = describeMachine();
console.log(
  `machine: ${machine.cpu} x${machine.cores}, ${machine.node}; load ${JSON.stringify(loadDuring)}; total ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);
writeText(
  'rolling.svg',
  barChartSvg(
    `Rolling restart of 3 pods with ${PEERS} peers`,
    [
      {
        title: 'per-peer downtime',
        unit: 's',
        groups: ['p50', 'p99', 'max'],
        series: [
          {
            name: 'ours cluster',
            values: [result.downtime.p50Us / 1e6, result.downtime.p99Us / 1e6, result.downtime.maxUs / 1e6],
          },
        ],
      },
    ],
    `${machine.cpu} x${machine.cores}, ${machine.node}; peers lost ${result.lost}`,
  ),
);
const path = writeJson('rolling', {
  machine,
  load: loadDuring,
  settings: { peers: PEERS, drainWindow: DRAIN },
  result,
  markdown: table,
});
console.log(`wrote ${path} and bench/results/rolling.svg`);
