/**
 * First measurements of the standalone relay: handshakes per second and
 * same-process relay throughput with 1,400-byte transport messages.
 * Prints a table and writes bench/results/relay-quick.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { encodeTransport } from '../src/protocol/codec.js';
import { NO_PER_IP_LIMITS } from '../test/support/loopback-limits.js';
import { RelayProcess } from '../test/support/relay-process.js';
import { RelayTestClient } from '../test/support/relay-test-client.js';
import { TEST_SECRET } from '../test/support/in-process-relay.js';
import { describeMachine, processCpuSeconds } from './machine.js';

const HANDSHAKES = Number(process.env.BENCH_HANDSHAKES ?? 3000);
const CONCURRENCY = 100;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PAYLOAD = 1400;
const IN_FLIGHT_BYTES = 256 * 1024;

async function handshakes(relay: RelayProcess): Promise<{ perSecond: number; cpuSeconds: number }> {
  const clients: RelayTestClient[] = [];
  const cpuBefore = processCpuSeconds(relay.child.pid!);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < HANDSHAKES) {
        const i = next++;
        clients.push(
          await RelayTestClient.connect(relay.url, { identifier: `hs-${i}`, secret: TEST_SECRET }),
        );
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = processCpuSeconds(relay.child.pid!) - cpuBefore;
  for (const c of clients) c.terminate();
  return { perSecond: HANDSHAKES / seconds, cpuSeconds };
}

async function throughput(relay: RelayProcess, pairs: number) {
  const senders: RelayTestClient[] = [];
  const receivers: RelayTestClient[] = [];
  for (let i = 0; i < pairs; i++) {
    senders.push(
      await RelayTestClient.connect(relay.url, { identifier: `tx-${pairs}-${i}`, secret: TEST_SECRET }),
    );
    receivers.push(
      await RelayTestClient.connect(relay.url, { identifier: `rx-${pairs}-${i}`, secret: TEST_SECRET }),
    );
  }
  let delivered = 0;
  for (const r of receivers) {
    r.ws.removeAllListeners('message');
    r.ws.on('message', () => delivered++);
  }
  let running = true;
  const pump = (sender: RelayTestClient, packet: Buffer): void => {
    // Keep a bounded amount in flight so we measure the relay, not our own buffering.
    while (running && sender.ws.bufferedAmount < IN_FLIGHT_BYTES) sender.ws.send(packet);
    if (running) setImmediate(() => pump(sender, packet));
  };
  const cpuBefore = processCpuSeconds(relay.child.pid!);
  const started = performance.now();
  senders.forEach((s, i) => pump(s, encodeTransport(receivers[i]!.peerId, Buffer.alloc(PAYLOAD, i))));
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  running = false;
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = processCpuSeconds(relay.child.pid!) - cpuBefore;
  const count = delivered;
  for (const c of [...senders, ...receivers]) c.terminate();
  const messagesPerSecond = count / seconds;
  return {
    pairs,
    messagesPerSecond: Math.round(messagesPerSecond),
    gbitPerSecond: Number(((messagesPerSecond * (PAYLOAD + 38) * 8) / 1e9).toFixed(3)),
    relayCpuSeconds: Number(cpuSeconds.toFixed(2)),
    messagesPerRelayCpuSecond: Math.round(count / cpuSeconds),
  };
}

const relay = await RelayProcess.start({ env: { NB_LOG_LEVEL: 'warn', ...NO_PER_IP_LIMITS } });
try {
  const hs = await handshakes(relay);
  const rows = [];
  for (const pairs of [1, 8]) rows.push(await throughput(relay, pairs));
  const result = {
    machine: describeMachine(),
    handshakes: {
      count: HANDSHAKES,
      concurrency: CONCURRENCY,
      perSecond: Math.round(hs.perSecond),
      relayCpuSeconds: hs.cpuSeconds,
    },
    throughput: rows,
    note: 'load generator and relay share this machine; the generator runs in one Node process',
  };
  console.log(`machine: ${result.machine.cpu} x${result.machine.cores}, node ${result.machine.node}`);
  console.log(
    `handshakes/s: ${result.handshakes.perSecond} (${HANDSHAKES} connections, ${CONCURRENCY} at a time)`,
  );
  console.table(rows);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/relay-quick.json', JSON.stringify(result, null, 2) + '\n');
} finally {
  await relay.stop();
}
