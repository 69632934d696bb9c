import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awaitOnline, connectPeer, startPod, type Pod } from '../cluster/cluster-pods.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';

/**
 * The keys a JSON log line has more than once at its top level. JSON.parse keeps only the last
 * of repeated keys, so the raw text is scanned (pino writes `"key":value` without spaces).
 */
function repeatedTopLevelKeys(line: string): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (char === '"') {
      let end = i + 1;
      while (end < line.length && line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      const text = line.slice(i + 1, end);
      if (depth === 1 && line[end + 1] === ':') {
        if (seen.has(text)) repeated.push(text);
        seen.add(text);
      }
      i = end;
    } else if (char === '{' || char === '[') depth++;
    else if (char === '}' || char === ']') depth--;
  }
  return repeated;
}

describe('log lines', () => {
  let redis: RedisServer;
  const pods: Pod[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const env = { NB_REDIS_URL: redis.url, NB_REDIS_KEY_PREFIX: 'nblog' };
    pods.push(await startPod('pod-a', env, { logLevel: 'debug' }));
    pods.push(await startPod('pod-b', env, { logLevel: 'debug' }));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(pods.map((pod) => pod.process.stop()));
    await stopAllRedis();
  });

  it('name each key once, in every component of a cluster pod', async () => {
    const [a, b] = pods as [Pod, Pod];
    // Both pods linked and a cross-pod peer pair: the mesh, registry and membership have logged.
    await expect.poll(() => a.process.metric('relay_mesh_links_up'), { timeout: 10_000 }).toBe(1);
    const alice = await connectPeer(a, 'log-alice');
    const bob = await connectPeer(b, 'log-bob');
    await awaitOnline(alice, bob);
    alice.close();
    bob.close();

    const lines = pods.flatMap((pod) =>
      pod.process.output.split('\n').filter((line) => line.startsWith('{')),
    );
    const repeats = lines
      .map((line) => ({ line, repeated: repeatedTopLevelKeys(line) }))
      .filter(({ repeated }) => repeated.length > 0);
    expect(repeats).toEqual([]);
    const components = new Set(lines.map((line) => (JSON.parse(line) as { component?: string }).component));
    expect([...components].filter((c) => c !== undefined).sort()).toEqual(
      expect.arrayContaining(['cluster', 'mesh', 'registry']),
    );
  });
});
