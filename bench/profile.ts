/**
 * Where our relay spends its CPU: runs the throughput load (8 pairs, closed
 * loop) against our standalone relay and against a cluster with sender and
 * receiver on different pods, each under `node --cpu-prof`, and prints self
 * time by function (profiles kept in bench/results/profiles/).
 *
 *   npm run bench:profile            BENCH_SECONDS=8 BENCH_SERVERS=ours,cluster-cross
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { selfTimeByFunction } from './lib/cpuprofile.js';
import { buildLoadgen, runLoadgen } from './lib/loadgen.js';
import { measureThroughput } from './lib/measure.js';
import { RESULTS_DIR, fmt, markdownTable, waitForQuiet, writeJson } from './lib/report.js';
import { SECRET, ensureDir, startOurs } from './lib/servers.js';
import { forEachTarget, type TargetKey } from './lib/targets.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const PAIRS = Number(process.env.BENCH_PROFILE_PAIRS ?? 8);
const KEYS = (process.env.BENCH_SERVERS ?? 'ours,cluster-cross').split(',') as TargetKey[];

buildLoadgen();
await waitForQuiet();
const out: Record<string, unknown> = {};
for (const key of KEYS) {
  const dir = ensureDir(join(RESULTS_DIR, 'profiles', key));
  for (const f of readdirSync(dir)) if (f.endsWith('.cpuprofile')) rmSync(join(dir, f));
  let row;
  await forEachTarget(
    async (t) => {
      row = await measureThroughput(t, PAIRS, { seconds: SECONDS, warmup: 1 });
    },
    { cpuProfDir: dir },
    [key],
  );
  const profiles = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const summaries = profiles.map((f) => ({ file: join(dir, f), ...selfTimeByFunction(join(dir, f)) }));
  out[key] = { throughput: row, profiles: summaries };
  for (const s of summaries) {
    console.log(
      `\n## ${key}: ${s.file} (total ${fmt(s.totalMs)} ms sampled, idle ${(s.idleShare * 100).toFixed(1)} %)`,
    );
    console.log(
      markdownTable(
        ['self %', 'self ms', 'function', 'where'],
        s.rows.map((r) => [(r.share * 100).toFixed(1), fmt(r.ms), r.fn, r.where]),
      ),
    );
  }
}

// Handshakes: peers connecting as fast as two generators manage, then closing.
if (process.env.BENCH_PROFILE_HANDSHAKES !== '0') {
  const dir = ensureDir(join(RESULTS_DIR, 'profiles', 'handshakes'));
  for (const f of readdirSync(dir)) if (f.endsWith('.cpuprofile')) rmSync(join(dir, f));
  const server = await startOurs({ cpuProfDir: dir });
  const peers = Number(process.env.BENCH_PROFILE_PEERS ?? 8000);
  try {
    const results = await Promise.all(
      [0, 1].map((g) =>
        runLoadgen('idle', [
          '-urls',
          server.urls[0]!,
          '-peers',
          String(peers / 2),
          '-offset',
          String((g * peers) / 2),
          '-hold',
          '1s',
          '-concurrency',
          '100',
          '-local-ips',
          `127.0.0.${g + 1}`,
          '-secret',
          SECRET,
        ]),
      ),
    );
    const hs = results.reduce((a, r) => a + r.connected, 0) / Math.max(...results.map((r) => r.seconds));
    console.log(`\nhandshakes: ${fmt(hs)} per second while profiled`);
  } finally {
    await server.stop();
  }
  const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'));
  if (f) {
    const s = { file: join(dir, f), ...selfTimeByFunction(join(dir, f), 40) };
    out.handshakes = s;
    console.log(
      `\n## handshakes: ${s.file} (total ${fmt(s.totalMs)} ms sampled, idle ${(s.idleShare * 100).toFixed(1)} %)`,
    );
    console.log(
      markdownTable(
        ['self %', 'self ms', 'function', 'where'],
        s.rows.map((r) => [(r.share * 100).toFixed(1), fmt(r.ms), r.fn, r.where]),
      ),
    );
  }
}
console.log(`\nwrote ${writeJson('profile', out)}`);
