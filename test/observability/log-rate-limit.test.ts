import { Writable } from 'node:stream';
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { freePort } from '../support/free-port.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { RelayProcess } from '../support/relay-process.js';

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('log flood', () => {
  afterAll(() => stopAllRedis());

  it('passes 10 warnings of one kind per window, then reports how many it suppressed', async () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream, { linesPerWindow: 10, windowMs: 300 });
    for (let i = 0; i < 513; i++) logger.warn({ i }, 'refused mesh connection');
    logger.warn('another kind');
    logger.info('info is never limited');
    expect(lines.filter((l) => l.msg === 'refused mesh connection')).toHaveLength(10);
    expect(lines.map((l) => l.msg)).toContain('another kind');
    expect(lines.map((l) => l.msg)).toContain('info is never limited');
    await expect
      .poll(() => lines.find((l) => l.msg === 'refused mesh connection (repeats suppressed)'))
      .toMatchObject({ suppressed: 503, level: 40 });
    // A new window passes lines again.
    logger.warn('refused mesh connection');
    expect(lines.filter((l) => l.msg === 'refused mesh connection')).toHaveLength(11);
  });

  it('513 refused mesh dials to a relay write at most 10 warning lines', async () => {
    const redis = await RedisServer.start();
    const meshPort = await freePort();
    const relay = await RelayProcess.start({
      env: {
        NB_REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        NB_CLUSTER_SECRET: 'log-flood-test-secret',
        NB_MESH_LISTEN_ADDRESS: `127.0.0.1:${meshPort}`,
        NB_MESH_ADVERTISE_ADDRESS: `127.0.0.1:${meshPort}`,
        NB_POD_NAME: 'flooded',
      },
    });
    try {
      for (let i = 0; i < 513; i++) {
        const socket = connect(meshPort, '127.0.0.1');
        socket.on('error', () => {});
        socket.write('GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        await once(socket, 'data'); // the refusal
        socket.destroy();
      }
      await expect.poll(() => relay.metric('relay_mesh_auth_failures_total'), { timeout: 5_000 }).toBe(513);
      const warnings = relay.output.split('\n').filter((l) => l.includes('"refused mesh connection"'));
      expect(warnings).toHaveLength(10);
    } finally {
      await relay.stop();
      await redis.stop();
    }
  });
});
