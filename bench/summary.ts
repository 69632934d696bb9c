/**
 * Every target of the benchmarks issue with the figure measured in the latest
 * results (bench/results/*.json), met or not, and the NetBird ratio where one
 * exists. Writes bench/results/summary.md.
 *
 *   npm run bench:summary
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Json } from './lib/loadgen.js';
import { RESULTS_DIR, fmt, markdownTable, writeText } from './lib/report.js';

function load(name: string): Json | undefined {
  const p = join(RESULTS_DIR, `${name}.json`);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Json) : undefined;
}
const tp = load('throughput');
const fairness = load('fairness');
const lat = load('latency');
const scale = load('scale');
const notify = load('notify');
const failover = load('failover');
const rolling = load('rolling');

type Row = [string, string, string, string, string];
const rows: Row[] = [];
const verdict = (ok: boolean | undefined): string =>
  ok === undefined ? 'not measured' : ok ? 'met' : 'MISSED';
const x = (v: number | undefined): string => (v === undefined ? '–' : `${v.toFixed(2)}x`);

if (tp) {
  const row = (target: string, pairs: number): Json | undefined =>
    tp.rows.find((r: Json) => r.target === target && r.pairs === pairs);
  for (const pairs of tp.settings.pairs as number[]) {
    const ours = row('ours', pairs);
    const nb = row('netbird', pairs);
    const sp = row('splice', pairs);
    const same = row('cluster-same', pairs);
    const cross = row('cluster-cross', pairs);
    const random = row('cluster-random', pairs);
    if (ours && nb) {
      const r = ours.messagesPerRelayCpuSecond / nb.messagesPerRelayCpuSecond;
      rows.push([
        `standalone msg per relay CPU-s >= NetBird (aim 1.5x), ${pairs} pair(s)`,
        `${fmt(ours.messagesPerRelayCpuSecond)} vs ${fmt(nb.messagesPerRelayCpuSecond)}`,
        x(r),
        verdict(r >= 1) + (r >= 1.5 ? ' (aim met)' : r >= 1 ? ' (aim 1.5x missed)' : ''),
        `msg/s ${fmt(ours.messagesPerSecond)} vs ${fmt(nb.messagesPerSecond)}`,
      ]);
    }
    if (ours && sp) {
      const r = ours.messagesPerRelayCpuSecond / sp.messagesPerRelayCpuSecond;
      rows.push([
        `standalone msg per relay CPU-s >= 0.5x raw splice, ${pairs} pair(s)`,
        `${fmt(ours.messagesPerRelayCpuSecond)} vs ${fmt(sp.messagesPerRelayCpuSecond)}`,
        '–',
        verdict(r >= 0.5) + ` (${r.toFixed(2)}x splice)`,
        '',
      ]);
    }
    if (same && sp) {
      const r = same.messagesPerRelayCpuSecond / sp.messagesPerRelayCpuSecond;
      rows.push([
        `same-pod msg per relay CPU-s >= 0.5x raw splice (moonshot), ${pairs} pair(s)`,
        `${fmt(same.messagesPerRelayCpuSecond)} vs ${fmt(sp.messagesPerRelayCpuSecond)}`,
        '–',
        verdict(r >= 0.5) + ` (${r.toFixed(2)}x splice)`,
        '',
      ]);
    }
    if (same && cross && pairs > 1) {
      const r = cross.messagesPerRelayCpuSecond / same.messagesPerRelayCpuSecond;
      rows.push([
        `cross-pod msg per relay CPU-s >= 0.6x same-pod (moonshot 0.8x), ${pairs} pairs`,
        `${fmt(cross.messagesPerRelayCpuSecond)} vs ${fmt(same.messagesPerRelayCpuSecond)}`,
        nb ? x(cross.messagesPerRelayCpuSecond / nb.messagesPerRelayCpuSecond) : '–',
        verdict(r >= 0.6) + ` (${r.toFixed(2)}x)` + (r >= 0.8 ? ', moonshot met' : ''),
        "all pods' CPU",
      ]);
    }
    if (random && nb && pairs === 64) {
      const r = random.messagesPerRelayCpuSecond / nb.messagesPerRelayCpuSecond;
      rows.push([
        `3-pod cluster, random placement, msg per relay CPU-s >= 2.5x NetBird, ${pairs} pairs`,
        `${fmt(random.messagesPerRelayCpuSecond)} vs ${fmt(nb.messagesPerRelayCpuSecond)}`,
        x(r),
        verdict(r >= 2.5),
        ours ? `ours standalone ${x(ours.messagesPerRelayCpuSecond / nb.messagesPerRelayCpuSecond)}` : '',
      ]);
    }
    if (same && cross) {
      const r = cross.messagesPerSecond / same.messagesPerSecond;
      rows.push([
        `cross-pod throughput >= 0.8x same-pod, ${pairs} pair(s)`,
        `${fmt(cross.messagesPerSecond)} vs ${fmt(same.messagesPerSecond)} msg/s`,
        nb ? x(cross.messagesPerSecond / nb.messagesPerSecond) : '–',
        verdict(r >= 0.8) + ` (${r.toFixed(2)}x)`,
        `cluster CPU ${cross.relayCores} vs ${same.relayCores} cores`,
      ]);
    }
  }
}
if (lat?.crossPodAdded) {
  const a = lat.crossPodAdded;
  rows.push([
    'cross-pod added p99 latency <= 1 ms',
    `${fmt(a.p99Us / 1000, 2)} ms (p50 ${fmt(a.p50Us / 1000, 2)} ms) at ${fmt(a.rate)} msg/s`,
    '–',
    verdict(a.p99Us <= 1000),
    'cross-pod minus same-pod, same rate',
  ]);
  const nb = lat.rows.find((r: Json) => r.target === 'netbird' && r.kind === 'half of own max');
  const ours = lat.rows.find((r: Json) => r.target === 'ours' && r.kind === 'half of own max');
  const nbF = lat.rows.find((r: Json) => r.target === 'netbird' && r.kind === 'fixed rate');
  const oursF = lat.rows.find((r: Json) => r.target === 'ours' && r.kind === 'fixed rate');
  const crossF = lat.rows.find((r: Json) => r.target === 'cluster-cross' && r.kind === 'fixed rate');
  if (nbF)
    for (const [name, r] of [
      ['standalone', oursF],
      ['cross-pod', crossF],
    ] as const)
      if (r)
        rows.push([
          `p99 at a fixed ${fmt(r.rate)} msg/s <= NetBird's, ${name}`,
          `${fmt(r.latency.p99Us)} µs (p50 ${fmt(r.latency.p50Us)})`,
          `NetBird ${fmt(nbF.latency.p99Us)} µs (${x(r.latency.p99Us / nbF.latency.p99Us)})`,
          verdict(r.latency.p99Us <= nbF.latency.p99Us),
          '',
        ]);
  if (nbF && oursF)
    rows.push([
      `latency p50/p99/p999 at a fixed ${fmt(oursF.rate)} msg/s (info)`,
      `ours ${fmt(oursF.latency.p50Us)}/${fmt(oursF.latency.p99Us)}/${fmt(oursF.latency.p999Us)} µs`,
      `NetBird ${fmt(nbF.latency.p50Us)}/${fmt(nbF.latency.p99Us)}/${fmt(nbF.latency.p999Us)} µs (p99 ${x(oursF.latency.p99Us / nbF.latency.p99Us)})`,
      'no target',
      '',
    ]);
  if (nb && ours)
    rows.push([
      'latency p50/p99/p999 at half of own max rate (info)',
      `ours ${fmt(ours.latency.p50Us)}/${fmt(ours.latency.p99Us)}/${fmt(ours.latency.p999Us)} µs at ${fmt(ours.rate)} msg/s`,
      `NetBird ${fmt(nb.latency.p50Us)}/${fmt(nb.latency.p99Us)}/${fmt(nb.latency.p999Us)} µs at ${fmt(nb.rate)} msg/s`,
      'no target',
      '',
    ]);
}
if (fairness) {
  const q = fairness.quiet;
  rows.push([
    'fairness: a 200 msg/s pair loses 0 while one flow floods the same mesh link',
    `${fmt(q.lost)} of ${fmt(q.sent)} lost (p99 ${fmt(q.latency.p99Us / 1000, 1)} ms)`,
    '–',
    verdict(q.lost === 0),
    `flood: ${fmt(fairness.flood.lost)} of ${fmt(fairness.flood.sent)} dropped`,
  ]);
}
if (notify) {
  const c = notify.rows.find((r: Json) => r.key === 'cluster');
  const nb = notify.rows.find((r: Json) => r.key === 'netbird');
  if (c)
    rows.push([
      `cross-pod offline -> online notice p99 <= 20 ms at ${notify.settings.rate} reconnects/s`,
      `${fmt(c.onlineNotice.p99Us / 1000, 1)} ms from reconnect start (${fmt(c.onlineAfterAuth.p99Us / 1000, 1)} ms after the auth response); missing ${c.missingOffline} offline / ${c.missingOnline} online`,
      nb
        ? `NetBird (one process) ${fmt(nb.onlineNotice.p99Us / 1000, 1)} ms, ${nb.missingOffline} offline notices missing of ${nb.rounds}`
        : '–',
      verdict(c.onlineNotice.p99Us <= 20_000),
      `achieved ${fmt(c.reconnectsPerSecond)} reconnects/s`,
    ]);
}
if (scale) {
  const ours = scale.rows.find((r: Json) => r.label === 'ours standalone');
  const nb = scale.rows.find((r: Json) => r.label.startsWith('NetBird'));
  if (ours) {
    rows.push([
      `<= 16 KB RSS per idle peer at ${fmt(ours.peers)} peers`,
      `${ours.rssPerPeerKiB.toFixed(1)} KiB (${ours.connected} connected)`,
      nb ? `NetBird ${nb.rssPerPeerKiB.toFixed(1)} KiB (${x(ours.rssPerPeerKiB / nb.rssPerPeerKiB)})` : '–',
      verdict(ours.rssPerPeerKiB <= 16),
      '',
    ]);
    rows.push([
      '>= 5,000 handshakes/s',
      fmt(ours.handshakesPerSecond),
      nb
        ? `NetBird ${fmt(nb.handshakesPerSecond)} (${x(ours.handshakesPerSecond / nb.handshakesPerSecond)})`
        : '–',
      verdict(ours.handshakesPerSecond >= 5000),
      'generator (Go) on the same 2 cores',
    ]);
  }
}
if (failover)
  rows.push([
    'kill -9 detected everywhere <= 3 s',
    `worst ${fmt(failover.worstMs)} ms over ${failover.runs.length} runs (${failover.settings.peers} peers)`,
    'NetBird has no cluster',
    verdict(failover.worstMs <= 3000 && failover.runs.every((r: Json) => r.missing === 0)),
    '',
  ]);
if (rolling) {
  const r = rolling.result;
  rows.push([
    'rolling restart: 0 peers lost',
    `${r.lost} lost, ${r.unreachable} unreachable of ${r.peers}`,
    '–',
    verdict(r.lost === 0 && r.unreachable === 0),
    `${r.abruptDisconnects} abrupt disconnects`,
  ]);
  rows.push([
    'rolling restart: all back <= 10 s',
    `all reachable ${r.allReachableAfterDoneMs === null ? 'never' : `${(r.allReachableAfterDoneMs / 1000).toFixed(2)} s`} after the last pod was ready; per-peer downtime max ${(r.downtime.maxUs / 1e6).toFixed(2)} s`,
    '–',
    verdict(
      r.allReachableAfterDoneMs !== null && r.allReachableAfterDoneMs <= 10_000 && r.downtime.maxUs <= 10e6,
    ),
    `rollout ${(r.rolloutMs / 1000).toFixed(1)} s`,
  ]);
}
const machine = (tp ?? lat ?? scale ?? notify)?.machine;
const loads = [tp, fairness, lat, scale, notify, failover, rolling]
  .filter(Boolean)
  .map((j) => `${j!.load.start.toFixed(1)}–${j!.load.max.toFixed(1)}`);
const md =
  markdownTable(['target', 'measured', 'NetBird / ratio', 'verdict', 'note'], rows) +
  `\n\nMachine: ${machine?.cpu} x${machine?.cores}, ${machine?.memoryGiB} GiB, ${machine?.node}, ${machine?.go}. ` +
  `Load average (1 min) during the runs: ${loads.join(', ')}.\n`;
console.log(md);
writeText('summary.md', md);
