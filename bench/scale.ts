/**
 * Scale: idle peers on one relay process. Opens BENCH_IDLE_PEERS peers
 * (default 19,900: this sandbox caps a process at 20,000 open files, and the
 * relay needs a few for itself) from two generator processes, reports
 * handshakes per second and the relay's RSS per idle peer (RSS with the peers
 * minus RSS before, after a short settle).
 *
 *   npm run bench:scale              BENCH_IDLE_PEERS=19900 BENCH_SERVERS=ours,netbird
 */
import { buildLoadgen, startLoadgen, type Json } from './lib/loadgen.js';
import { cpuSeconds, rssKiB, sleep } from './lib/proc.js';
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

const PEERS = Number(process.env.BENCH_IDLE_PEERS ?? 19_900);
const GENERATORS = Number(process.env.BENCH_GENERATORS ?? 2);
const CONCURRENCY = Number(process.env.BENCH_HANDSHAKE_CONCURRENCY ?? 100);
const SETTLE_MS = 3_000;
const wanted = (process.env.BENCH_SERVERS ?? 'ours,netbird').split(',');

interface ScaleRow {
  label: string;
  peers: number;
  connected: number;
  failed: number;
  handshakesPerSecond: number;
  handshakeP50Ms: number;
  handshakeP99Ms: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerPeerKiB: number;
  relayCpuSecondsForHandshakes: number;
  firstError?: string;
}

async function measure(server: Server, label: string): Promise<ScaleRow> {
  const pid = server.pods[0]!.pid;
  await sleep(1_000);
  const rssBefore = rssKiB(pid);
  const cpuBefore = cpuSeconds(pid);
  const per = Math.ceil(PEERS / GENERATORS);
  const connected: Json[] = [];
  let allConnected!: () => void;
  const ready = new Promise<void>((r) => (allConnected = r));
  const run = `${Date.now()}`;
  const gens = Array.from({ length: GENERATORS }, (_, g) =>
    startLoadgen(
      'idle',
      [
        '-urls',
        server.urls[0]!,
        '-peers',
        String(Math.min(per, PEERS - g * per)),
        '-offset',
        String(g * per),
        '-concurrency',
        String(CONCURRENCY),
        '-hold',
        '120s',
        '-local-ips',
        `127.0.0.${g + 1}`,
        '-secret',
        SECRET,
        '-run',
        run,
      ],
      (e) => {
        if (e.event === 'connected') {
          connected.push(e);
          if (connected.length === GENERATORS) allConnected();
        }
      },
    ),
  );
  await Promise.race([ready, Promise.all(gens.map((g) => g.result))]);
  const cpuHandshakes = cpuSeconds(pid) - cpuBefore;
  await sleep(SETTLE_MS);
  const rssAfter = rssKiB(pid);
  for (const g of gens) g.send('close');
  const results = await Promise.all(gens.map((g) => g.result));
  const ok = results.reduce((s, r) => s + r.connected, 0);
  const failed = results.reduce((s, r) => s + r.failed, 0);
  const start = Math.min(...results.map((r) => r.startUnixMs));
  const end = Math.max(...results.map((r) => r.endUnixMs));
  const weighted = (q: string): number =>
    results.reduce((s, r) => s + (r.handshake[q] ?? 0) * r.connected, 0) / Math.max(1, ok) / 1000;
  return {
    label,
    peers: PEERS,
    connected: ok,
    failed,
    handshakesPerSecond: Math.round(ok / ((end - start) / 1000)),
    handshakeP50Ms: Number(weighted('p50Us').toFixed(2)),
    handshakeP99Ms: Number(Math.max(...results.map((r) => r.handshake.p99Us ?? 0)).toFixed(0)) / 1000,
    rssBeforeMiB: Number((rssBefore / 1024).toFixed(1)),
    rssAfterMiB: Number((rssAfter / 1024).toFixed(1)),
    rssPerPeerKiB: Number(((rssAfter - rssBefore) / Math.max(1, ok)).toFixed(2)),
    relayCpuSecondsForHandshakes: Number(cpuHandshakes.toFixed(2)),
    firstError: results.map((r) => r.firstError).find((e) => e) || undefined,
  };
}

buildLoadgen();
await waitForQuiet();
const load = new LoadMonitor();
const rows: ScaleRow[] = [];
const servers: [string, string, () => Promise<Server>][] = [
  ['ours', 'ours standalone', () => startOurs()],
  ['cluster', 'ours cluster pod (1 of 3)', () => startCluster(3)],
  ['netbird', 'NetBird relay v0.77.1', () => startNetbird()],
];
for (const [key, label, start] of servers) {
  if (!wanted.includes(key)) continue;
  const server = await start();
  try {
    const row = await measure(server, label);
    rows.push(row);
    console.error(
      `${label.padEnd(26)} ${row.connected}/${row.peers} peers, ${fmt(row.handshakesPerSecond)} handshakes/s, ` +
        `${row.rssPerPeerKiB} KiB RSS per peer (${row.rssBeforeMiB} -> ${row.rssAfterMiB} MiB)`,
    );
  } finally {
    await server.stop();
  }
  await sleep(2_000);
}
const loadDuring = load.stop();
const table = markdownTable(
  [
    'server',
    'idle peers',
    'failed',
    'handshakes/s',
    'handshake p50 / p99 (ms)',
    'RSS before → after (MiB)',
    'RSS per peer (KiB)',
  ],
  rows.map((r) => [
    r.label,
    fmt(r.connected),
    fmt(r.failed),
    fmt(r.handshakesPerSecond),
    `${r.handshakeP50Ms} / ${r.handshakeP99Ms}`,
    `${r.rssBeforeMiB} → ${r.rssAfterMiB}`,
    r.rssPerPeerKiB.toFixed(1),
  ]),
);
console.log(table);
const machine = describeMachine();
console.log(`machine: ${machine.cpu} x${machine.cores}, ${machine.node}; load ${JSON.stringify(loadDuring)}`);
writeText(
  'scale.svg',
  barChartSvg(
    `${fmt(PEERS)} idle peers on one process`,
    [
      {
        title: 'Handshakes per second',
        unit: '1/s',
        groups: ['handshakes/s'],
        series: rows.map((r) => ({ name: r.label, values: [r.handshakesPerSecond] })),
      },
      {
        title: 'RSS per idle peer',
        unit: 'KiB',
        groups: ['RSS per peer'],
        series: rows.map((r) => ({ name: r.label, values: [r.rssPerPeerKiB] })),
      },
    ],
    `${machine.cpu} x${machine.cores}, ${machine.node}`,
  ),
);
const path = writeJson('scale', {
  machine,
  load: loadDuring,
  settings: { peers: PEERS, generators: GENERATORS, concurrency: CONCURRENCY },
  rows,
  markdown: table,
});
console.log(`wrote ${path} and bench/results/scale.svg`);
