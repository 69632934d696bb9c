/**
 * System calls per relayed message: strace -c on the relay process for a few
 * seconds of the throughput load (8 pairs). strace slows the process down, so
 * only the ratios (calls per message, bytes per write) mean anything.
 *
 *   npm run bench:syscalls           BENCH_SERVERS=ours,netbird,splice
 */
import { spawn } from 'node:child_process';
import { buildLoadgen } from './lib/loadgen.js';
import { measureThroughput } from './lib/measure.js';
import { fmt, markdownTable, writeJson } from './lib/report.js';
import { forEachTarget, type TargetKey } from './lib/targets.js';

const KEYS = (process.env.BENCH_SERVERS ?? 'ours,netbird,splice').split(',') as TargetKey[];
const PAIRS = Number(process.env.BENCH_PAIRS ?? 8);
const SECONDS = 4;

buildLoadgen();
const rows: (string | number)[][] = [];
const out: Record<string, unknown> = {};
await forEachTarget(
  async (t) => {
    const pid = t.server.pods[0]!.pid;
    let trace: Promise<string> | undefined;
    const row = await measureThroughput(t, PAIRS, { seconds: SECONDS, warmup: 1 }).then((r) => r);
    void row;
    // Second run with strace attached for the measured window.
    const traced = await (async () => {
      const p = measureThroughput(t, PAIRS, { seconds: SECONDS, warmup: 1 });
      await new Promise((r) => setTimeout(r, 1500));
      trace = new Promise((res) => {
        const s = spawn('strace', ['-c', '-f', '-q', '-p', String(pid)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let text = '';
        s.stderr.on('data', (d: Buffer) => (text += d.toString()));
        s.stdout.on('data', (d: Buffer) => (text += d.toString()));
        setTimeout(() => s.kill('SIGINT'), (SECONDS - 1) * 1000);
        s.on('exit', () => res(text));
      });
      return p;
    })();
    const text = await trace!;
    const calls: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
      if (m) calls[m[2]!] = Number(m[1]);
    }
    const messages = traced.messagesPerSecond * (SECONDS - 1);
    const per = (n: number | undefined): string => (n ? (n / messages).toFixed(3) : '0');
    const writes = (calls.writev ?? 0) + (calls.write ?? 0) + (calls.sendmsg ?? 0) + (calls.sendto ?? 0);
    const reads = (calls.read ?? 0) + (calls.recvfrom ?? 0) + (calls.recvmsg ?? 0);
    rows.push([
      t.label,
      fmt(traced.messagesPerSecond),
      per(writes),
      per(reads),
      per(calls.epoll_wait ?? calls.epoll_pwait),
      per(calls.futex),
    ]);
    out[t.key] = { messagesPerSecondUnderStrace: traced.messagesPerSecond, calls, messagesApprox: messages };
  },
  {},
  KEYS,
);
const table = markdownTable(
  [
    'server',
    'msg/s (under strace)',
    'writes per msg',
    'reads per msg',
    'epoll waits per msg',
    'futex per msg',
  ],
  rows,
);
console.log(table);
console.log(`wrote ${writeJson('syscalls', { rows: out, markdown: table })}`);
