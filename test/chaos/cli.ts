import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkFile } from './checker.js';
import { runChaos, type Topology } from './driver.js';

/** npm run chaos -- --seed S --duration D --topology redis|sentinel|cluster [--clients N] [--bound MS] [--fuzz-frames N] [--fuzz-after D] [--stall-ms MS] */
const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    duration: { type: 'string', default: '60s' },
    topology: { type: 'string', default: 'redis' },
    clients: { type: 'string', default: '40' },
    bound: { type: 'string', default: '15000' },
    'rss-bound-mb': { type: 'string', default: '256' },
    'fuzz-frames': { type: 'string', default: '0' },
    'fuzz-after': { type: 'string' },
    'stall-ms': { type: 'string', default: '500' },
    dir: { type: 'string', default: join(tmpdir(), 'nb-chaos') },
  },
});

function millis(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!match) throw new Error(`--duration: cannot read "${text}" (e.g. 90s, 20m)`);
  const unit = match[2] ?? 's';
  return Number(match[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1_000 : 60_000);
}

const topology = values.topology as Topology;
if (!['redis', 'sentinel', 'cluster'].includes(topology)) {
  console.error(`--topology must be redis, sentinel or cluster, not "${values.topology}"`);
  process.exit(2);
}
const clients = Number(values.clients);
if (!(clients >= 2 && clients <= 200)) {
  console.error('--clients must be between 2 and 200');
  process.exit(2);
}
const result = await runChaos({
  seed: Number(values.seed),
  durationMs: millis(values.duration),
  topology,
  clients,
  dir: values.dir,
  boundMs: Number(values.bound),
  rssBoundBytes: Number(values['rss-bound-mb']) * 1024 * 1024,
  fuzzFrames: Number(values['fuzz-frames']),
  ...(values['fuzz-after'] ? { fuzzAfterMs: millis(values['fuzz-after']) } : {}),
  stallMs: Number(values['stall-ms']),
  log: (line) => console.log(line),
});
const { verdict, report, ignoringHostStalls } = checkFile(result.historyFile);
console.log(`history: ${result.historyFile}`);
console.log(`stats: ${JSON.stringify(verdict.stats)}`);
const byKind: Record<string, number> = {};
for (const violation of verdict.violations) byKind[violation.kind] = (byKind[violation.kind] ?? 0) + 1;
console.log(`violations by kind: ${JSON.stringify(byKind)}`);
console.log(`violations had host stalls not been recorded: ${JSON.stringify(ignoringHostStalls)}`);
console.log(report);
console.log(
  `rerun: npm run chaos -- --seed ${values.seed} --duration ${values.duration} --topology ${topology} --clients ${clients}` +
    (Number(values['fuzz-frames']) > 0 ? ` --fuzz-frames ${values['fuzz-frames']}` : '') +
    (values['fuzz-after'] ? ` --fuzz-after ${values['fuzz-after']}` : ''),
);
process.exit(verdict.violations.length === 0 ? 0 : 1);
