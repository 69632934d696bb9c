import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { RelayClient } from '../../src/client/index.js';
import { RedisKeys } from '../../src/registry/redis/keys.js';
import { startPod, type Pod } from '../cluster/cluster-pods.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { RedisServer, redisCli, stopAllRedis } from '../support/redis-server.js';
import { Rng } from './rng.js';

/*
 * What a stall of the single Redis does to live sessions: clients spread over three relay pods,
 * then the redis-server is stopped (SIGSTOP) for about the 2 s membership expiry and resumed.
 * A cluster that takes a slow Redis for dead members reaps live sessions and their clients are
 * disconnected; one that tells the two apart disconnects nobody. An experiment, not a test:
 *
 *   tsx test/chaos/redis-stall-experiment.ts [--trials 5] [--clients 30] [--cli dist/cli.js]
 *
 * (--cli: the relay build to judge, e.g. an older build's dist/cli.js).
 */
const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '5' },
    clients: { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
    cli: { type: 'string' },
  },
});
const rng = new Rng(Number(values.seed));
const cliPath = values.cli ? resolve(values.cli) : undefined;

async function trial(): Promise<{ stallMs: number; closed: number; clients: number }> {
  const redis = await RedisServer.start();
  const pods: Pod[] = [];
  const clients: RelayClient[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      pods.push(
        await startPod(
          `stall-${i}`,
          { NB_REDIS_URL: redis.url },
          { logLevel: 'warn', ...(cliPath ? { cliPath } : {}) },
        ),
      );
    }
    let closed = 0;
    const count = Number(values.clients);
    for (let i = 0; i < count; i++) {
      const pod = pods[i % pods.length] as Pod;
      const client = new RelayClient({
        url: `rel://127.0.0.1:${pod.process.port}`,
        peer: `stall-peer-${i}`,
        auth: { secret: TEST_SECRET },
      });
      await client.connect();
      client.once('disconnected', () => closed++);
      clients.push(client);
    }
    // Every pod looks for the dead only after beating for a whole expiry period (2 s).
    while (Number((await redisCli(redis.port, ['ZCARD', new RedisKeys('nbrelay').members])).trim()) < 3)
      await sleep(100);
    await sleep(3_000);
    const stallMs = rng.int(1_900, 2_300);
    redis.pause();
    await sleep(stallMs);
    redis.resume();
    // Reaping, offline events and closes all follow within a few beats of the resume.
    await sleep(5_000);
    return { stallMs, closed, clients: count };
  } finally {
    for (const client of clients) client.terminate();
    for (const pod of pods) await pod.process.stop();
    await redis.stop();
  }
}

const results = [];
for (let i = 0; i < Number(values.trials); i++) {
  const result = await trial();
  results.push(result);
  console.log(
    `trial ${i + 1}: stall ${result.stallMs} ms, ${result.closed} of ${result.clients} clients closed`,
  );
}
console.log(JSON.stringify({ cli: cliPath ?? 'dist/cli.js', results }));
await stopAllRedis();
