/**
 * Runs every benchmark in turn (each also has its own npm script), then the
 * summary of targets. About 10 minutes on 2 cores.
 */
import { spawnSync } from 'node:child_process';

const scripts = ['throughput', 'fairness', 'latency', 'scale', 'notify', 'failover', 'rolling', 'summary'];
for (const s of process.env.BENCH_ONLY?.split(',') ?? scripts) {
  console.log(`\n=== bench/${s}.ts`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', `bench/${s}.ts`], { stdio: 'inherit' });
  if (r.status !== 0) console.error(`bench/${s}.ts failed (${r.status ?? r.signal})`);
}
